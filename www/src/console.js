// The console (/console): changes (rows, newest first: revision, author,
// comments) x builders (columns); each cell is the result of the builder's
// latest build of that change's revision.  Both axes are virtualised.  Also
// the pieces the waterfall and the grid share with it: the URL filters
// (?name=&tag=&branch=), the builder list and the change x build matrix.
import { useEffect, useReducer, useRef } from 'preact/hooks';
import { html, resultName, when } from './util.js';
import { get } from './api.js';
import { listen, isOnline } from './live.js';
import { useViewport, span } from './virtual.js';

const CHANGES_PAGE = 50; // changes read at once ("older changes" reads the next page)
const MAX_CHANGES_PAGE = 500; // ?limit=N: 1 to this
const BUILDS_PAGE = 2000; // builds read to fill the cells of those changes

// ---- filters kept in the URL -------------------------------------------------------

export function readFilters() {
  const q = new URLSearchParams(location.search);
  return { name: q.get('name') ?? '', tag: q.get('tag') ?? '', branch: q.get('branch') ?? '',
    limit: q.get('limit') ?? '' };
}

// ?limit=N of a view: its page size, def when absent or not a number, capped at max
export function pageSize(text, def, max) {
  const n = Number.parseInt(text, 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, max) : def;
}

export function setFilter(key, value) {
  const q = new URLSearchParams(location.search);
  if (value) q.set(key, value);
  else q.delete(key);
  const s = q.toString();
  history.replaceState(null, '', s ? `${location.pathname}?${s}` : location.pathname);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function builderMatches(b, f) {
  return (!f.tag || (b.tags ?? []).includes(f.tag)) &&
    (!f.name || b.name.toLowerCase().includes(f.name.toLowerCase()));
}

export function Filters({ f, tags }) {
  return html`<form class="filters" onSubmit=${(e) => e.preventDefault()}>
    <label>Builder <input type="search" name="name" value=${f.name}
      onInput=${(e) => setFilter('name', e.currentTarget.value)} /></label>
    <label>Tag <select name="tag" value=${f.tag} onChange=${(e) => setFilter('tag', e.currentTarget.value)}>
      <option value="">any</option>
      ${tags.map((t) => html`<option value=${t}>${t}</option>`)}
    </select></label>
    <label>Branch <input type="search" name="branch" value=${f.branch}
      onChange=${(e) => setFilter('branch', e.currentTarget.value)} /></label>
  </form>`;
}

export function loadBuilders() {
  return get('builders?field=builderid&field=name&field=tags', 'builders')
    .then((bs) => bs.sort((a, b) => a.name.localeCompare(b.name)));
}

export const buildHref = (builder, b) =>
  `/builders/${encodeURIComponent(builder?.name ?? b.builderid)}/builds/${b.number}`;

export const stateName = (b) => (b.complete ? resultName(b.results) : 'running');

// ---- changes x builds ----------------------------------------------------------------

const BUILD_Q = 'field=buildid&field=builderid&field=number&field=results&field=complete' +
  '&field=started_at&field=complete_at&field=state_string&field=properties' +
  '&property=revision&property=branch';
const revOf = (b) => b.properties?.revision?.[0] || null; // "": none

// The changes of one branch (or all), newest first, and for each the latest
// build per builder of its revision; kept current from /ws events.
export class Matrix {
  constructor(changed, branch, page) {
    this.changed = changed;
    this.branch = branch;
    this.page = page;
    this.builders = [];
    this.changes = [];
    this.byRev = new Map(); // revision -> Map(builderid -> build)
    this.revOf = new Map(); // buildid -> its revision (read once per build)
    this.live = null;
    this.stale = false;
    this.more = false;
    this.loaded = false;
    this.error = null;
    this.seq = 0;
  }

  start() {
    const off = listen((k, m) => this.onEvent(k, m));
    // a hidden tab does nothing: events only mark it stale, and it reloads once seen
    const vis = () => !document.hidden && this.stale && this.load();
    document.addEventListener('visibilitychange', vis);
    if (isOnline()) this.load();
    return () => {
      off();
      document.removeEventListener('visibilitychange', vis);
    };
  }

  async load(extra = 0) {
    const seq = ++this.seq;
    this.stale = false;
    this.live = []; // builds read from events while this load runs: applied again after it
    try {
      const n = Math.max(this.page, this.changes.length + extra);
      const br = this.branch ? `&branch=${encodeURIComponent(this.branch)}` : '';
      const [builders, changes, builds] = await Promise.all([
        loadBuilders(),
        get(`changes?order=-changeid&limit=${n + 1}${br}&field=changeid&field=revision&field=author` +
          '&field=comments&field=branch&field=when_timestamp&field=revlink', 'changes'),
        get(`builds?order=-buildid&limit=${BUILDS_PAGE}&${BUILD_Q}`, 'builds'),
      ]);
      if (seq !== this.seq) return;
      this.builders = builders;
      this.more = changes.length > n;
      this.changes = changes.slice(0, n);
      this.byRev = new Map();
      this.revOf = new Map();
      for (const b of builds.reverse()) this.addBuild(b); // oldest first: the latest wins
      for (const b of this.live) this.addBuild(b);
      this.live = null;
      this.loaded = true;
      this.error = null;
    } catch (e) {
      this.error = e.message;
    }
    this.changed();
  }

  addBuild(b) {
    const rev = revOf(b);
    this.revOf.set(b.buildid, rev);
    if (rev == null) return;
    let m = this.byRev.get(rev);
    if (!m) this.byRev.set(rev, (m = new Map()));
    const prev = m.get(b.builderid);
    if (prev && (prev.buildid > b.buildid || (prev.buildid === b.buildid && prev.complete))) return;
    m.set(b.builderid, b);
  }

  cell(change, builderid) {
    return change.revision ? this.byRev.get(change.revision)?.get(builderid) : undefined;
  }

  async onEvent(k, m) {
    if (document.hidden) {
      this.stale = true;
      return undefined;
    }
    if (k === 'refetch') return this.load();
    const [coll, , verb] = k.split('/');
    if (coll === 'changes' && verb === 'new') return this.load();
    if (coll !== 'builds' || !m || (verb !== 'new' && verb !== 'finished')) return undefined;
    let b = null;
    const rev = this.revOf.get(m.buildid);
    if (rev !== undefined) {
      b = { ...m, properties: { revision: [rev, 'Build'] } };
    } else {
      try {
        // the event carries no properties: a build's revision is read once
        [b] = await get(`builds/${m.buildid}?${BUILD_Q}`, 'builds');
      } catch {
        return undefined; // the next event or refetch catches up
      }
    }
    if (!b) return undefined;
    this.live?.push(b);
    this.addBuild(b);
    this.changed();
    return undefined;
  }
}

export function useMatrix(f) {
  const [, bump] = useReducer((n) => n + 1, 0);
  const ref = useRef(null);
  const page = pageSize(f.limit, CHANGES_PAGE, MAX_CHANGES_PAGE);
  if (!ref.current || ref.current.branch !== f.branch || ref.current.page !== page)
    ref.current = new Matrix(bump, f.branch, page);
  const data = ref.current;
  useEffect(() => data.start(), [data]);
  useEffect(() => { if (data.loaded) performance.mark('kiln:data'); }, [data, data.loaded]); // bench/ui.mjs
  return data;
}

// A cell with a build: a link to it, coloured by its state.  An empty cell is
// no element at all (the row's background draws the column lines), so a
// screen of 1,000 builders holds only the cells that have something to show.
export function Cell({ b, builder, rev, x, y, w, h }) {
  if (!b) return null;
  const st = stateName(b);
  const label = `${builder?.name ?? ''} #${b.number}: ${st}${b.state_string ? ` (${b.state_string})` : ''}`;
  return html`<a class=${`cell r-${st}`} style=${`left:${x}px;top:${y}px;width:${w}px;height:${h}px`}
    href=${buildHref(builder, b)} data-builder=${builder?.name} data-revision=${rev} data-state=${st}
    title=${label} aria-label=${label}></a>`;
}

// the column lines of a row of cells: a background, not elements
export const colLines = (x0, colW) => `background-image:linear-gradient(to right, transparent ${colW - 1}px,` +
  ` var(--line) ${colW - 1}px);background-size:${colW}px 100%;background-position:${x0}px 0;` +
  'background-repeat:repeat-x';

export function firstLine(s) {
  return (s ?? '').split('\n', 1)[0];
}

// ---- the console view ---------------------------------------------------------------

const ROW_H = 28;
const COL_W = 28;
const HEAD_H = 140; // the builders' names, written vertically
const INFO_W = 360; // revision, author, comments

// the width of a sticky first column: its full width, or at most 40 % of a narrow screen
export function narrowed(full, screen) {
  return screen ? Math.min(full, Math.max(100, Math.round(screen * 0.4))) : full;
}

export function Console() {
  const f = readFilters();
  const data = useMatrix(f);
  const box = useRef(null);
  const vp = useViewport(box);
  const infoW = narrowed(INFO_W, vp.w); // a phone keeps room for the cells
  const shown = data.builders.filter((b) => builderMatches(b, f));
  const tags = [...new Set(data.builders.flatMap((b) => b.tags ?? []))].sort();
  const [c0, c1] = span(vp.x, vp.w - infoW, shown.length, COL_W);
  const [r0, r1] = span(vp.y, vp.h - HEAD_H, data.changes.length, ROW_H);
  const cols = shown.slice(c0, c1);
  const rows = data.changes.slice(r0, r1);
  const width = infoW + shown.length * COL_W;
  const height = HEAD_H + data.changes.length * ROW_H;

  return html`<section class="classic console">
    <h1>Console</h1>
    <${Filters} f=${f} tags=${tags} />
    ${data.error && html`<p class="error" role="alert">Cannot load: ${data.error}</p>`}
    ${!data.loaded && !data.error && html`<p class="dim">Loading…</p>`}
    ${data.loaded && data.changes.length === 0 && html`<p class="dim">No changes yet.</p>`}
    <div class="vbox" ref=${box} data-rows=${data.changes.length} data-cols=${shown.length}>
      <div class="vplane" style=${`width:${width}px;height:${height}px`}>
        <div class="vhead" style=${`height:${HEAD_H}px;width:${width}px`}>
          ${cols.map((b, i) => html`<a class="colname" key=${b.builderid}
            style=${`left:${infoW + (c0 + i) * COL_W}px;width:${COL_W}px;height:${HEAD_H}px`}
            href=${`/builders/${encodeURIComponent(b.name)}`} title=${b.name}>${b.name}</a>`)}
        </div>
        ${rows.map((c, i) => {
          const y = HEAD_H + (r0 + i) * ROW_H;
          return html`<div class="vrow" key=${c.changeid} data-change=${c.changeid}
              data-revision=${c.revision}
              style=${`top:${y}px;height:${ROW_H}px;width:${width}px;${colLines(infoW, COL_W)}`}>
            <div class="info" style=${`width:${infoW}px`}
              title=${`${c.author}\n${when(c.when_timestamp)}\n\n${c.comments}`}>
              <code>${(c.revision ?? '').slice(0, 10)}</code> <span class="who">${c.author}</span>
              <span class="dim">${firstLine(c.comments)}</span>
            </div>
            ${cols.map((b, j) => {
              const x = data.cell(c, b.builderid);
              return x && html`<${Cell} key=${b.builderid} b=${x} builder=${b} rev=${c.revision}
                x=${infoW + (c0 + j) * COL_W + 3} y=${4} w=${COL_W - 6} h=${ROW_H - 8} />`;
            })}
          </div>`;
        })}
      </div>
    </div>
    ${data.more && html`<p><button type="button" onClick=${() => data.load(data.page)}>Older changes</button></p>`}
  </section>`;
}
