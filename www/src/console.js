// The console (/console): changes (rows, newest first: revision, author,
// comments) x builders (columns); each cell is the result of the builder's
// latest build made from that change.  Both axes are virtualised.  Also
// the pieces the waterfall and the grid share with it: the URL filters
// (?name=&tag=&branch=), the builder list and the change x build matrix.
import { useEffect, useReducer, useRef } from 'preact/hooks';
import { html, resultName, when } from './util.js';
import { get, getAll, ApiError } from './api.js';
import { listen, isOnline } from './live.js';
import { useViewport, span } from './virtual.js';

const CHANGES_PAGE = 50; // changes read at once ("older changes" reads the next page)
const MAX_CHANGES_PAGE = 500; // ?limit=N: 1 to this

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
  return getAll('builders?field=builderid&field=name&field=tags', 'builders')
    .then((bs) => bs.sort((a, b) => a.name.localeCompare(b.name)));
}

export const buildHref = (builder, b) =>
  `/builders/${encodeURIComponent(builder?.name ?? b.builderid)}/builds/${b.number}`;

export const stateName = (b) => (b.complete ? resultName(b.results) : 'running');

// ---- changes x builds ----------------------------------------------------------------

// A cell is the latest build made from the change (change -> buildsets ->
// buildrequests -> builds), never a match on the revision string: two
// changes with one revision on two branches, or a forced build of no change,
// never land in the wrong cell.  The builds of a whole page of changes come
// in one request (/changes/builds, docs/API.md), only the cells that have one.
const CELLS_IDS = 500; // changeids per /changes/builds request (the API's cap)
const CELLS_ROWS = 10000; // rows in one /changes/builds answer (the API's cap)
const CELLS_PARALLEL = 3; // /changes/builds requests in flight
const CELLS_URL = 6000; // characters of changeids in one request
const KNOWN_BUILDS = 5000; // buildid -> its changeids, remembered for live events
const LIVE_BATCH_MS = 50; // new builds' events gathered before reading their changes
const LIVE_ONE_BY_ONE = 20; // more new builds at once: a reload
const CELLS_TIMEOUT_MS = 15000;
// what a cell shows: about 95 bytes of JSON per build (state_string and times are
// left out; a live event brings them for the builds that change while shown)
const CELL_Q = ['changeid', 'buildid', 'builderid', 'number', 'results', 'complete']
  .map((f) => `&field=${f}`).join('');

// GET /api/v2/PATH as a whole document (rows and meta); counts requests and bytes
async function getBody(path, stats) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), CELLS_TIMEOUT_MS);
  try {
    const r = await fetch(`/api/v2/${path}`, { headers: { Accept: 'application/json' }, signal: ctl.signal });
    const text = await r.text();
    stats.requests++;
    stats.bytes += text.length;
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      // reported below
    }
    if (!r.ok) throw new ApiError(body?.error ?? `${r.status} ${r.statusText}`);
    if (!Array.isArray(body?.builds)) throw new ApiError(`${path}: no 'builds' list in the answer`);
    return body;
  } catch (e) {
    throw e instanceof ApiError ? e : new ApiError(`${path}: ${e.message}`);
  } finally {
    clearTimeout(timer);
  }
}

// The changes of one branch (or all), newest first, and for each the latest
// build per builder made from it; kept current from /ws events.
export class Matrix {
  constructor(changed, branch, page) {
    this.changed = changed;
    this.branch = branch;
    this.page = page;
    this.builders = [];
    this.changes = [];
    this.cells = new Map(); // changeid -> Map(builderid -> build)
    this.changesOf = new Map(); // buildid -> [changeid] (read once per build)
    this.pending = new Map(); // buildid -> build: events waiting for flush()
    this.timer = null;
    this.live = null;
    this.stale = false;
    this.more = false;
    this.loaded = false;
    this.error = null;
    this.seq = 0;
    this.stats = { requests: 0, bytes: 0 }; // of the last load (bench/, tests)
  }

  start() {
    const off = listen((k, m) => this.onEvent(k, m));
    // a hidden tab does nothing: events only mark it stale, and it reloads once seen
    const vis = () => !document.hidden && this.stale && this.load();
    document.addEventListener('visibilitychange', vis);
    if (isOnline()) this.load();
    return () => {
      off();
      clearTimeout(this.timer);
      this.timer = null;
      document.removeEventListener('visibilitychange', vis);
    };
  }

  // the cells of changeids (newest first), in answers within the API's row
  // cap: a cut answer shows how many cells a change has, and the changes
  // left are then asked in groups that fit, CELLS_PARALLEL at a time
  async loadCells(ids) {
    const rows = [];
    const one = async (part) => {
      const body = await getBody(`changes/builds?changeid=${part.join(',')}${CELL_Q}`, this.stats);
      const got = body.builds;
      if (!body.meta?.truncated || got.length === 0) {
        rows.push(...got);
        return { rest: [], per: 0 };
      }
      const last = got[got.length - 1].changeid; // rows come by change, newest first
      if (got.every((r) => r.changeid === last)) {
        rows.push(...got); // one change fills a whole answer: keep what came
        return { rest: part.filter((id) => id < last), per: got.length };
      }
      const done = got.filter((r) => r.changeid !== last); // the last change may be partial
      rows.push(...done);
      return { rest: part.filter((id) => id <= last), per: done.length / new Set(done.map((r) => r.changeid)).size };
    };
    const queue = [];
    for (let i = 0; i < ids.length;) {
      // at most CELLS_IDS ids and CELLS_URL characters of them (the master's URI cap is 8 KB)
      let j = i;
      for (let len = 0; j < ids.length && j - i < CELLS_IDS && len + String(ids[j]).length < CELLS_URL; j++)
        len += String(ids[j]).length + 1;
      queue.push(ids.slice(i, j));
      i = j;
    }
    while (queue.length) {
      for (const { rest, per } of await Promise.all(queue.splice(0, CELLS_PARALLEL).map(one))) {
        const size = Math.max(1, Math.floor((0.8 * CELLS_ROWS) / Math.max(per, 1)));
        for (let j = 0; j < rest.length; j += size) queue.push(rest.slice(j, j + size));
      }
    }
    return rows;
  }

  async load(extra = 0) {
    const seq = ++this.seq;
    this.stale = false;
    this.live = []; // builds read from events while this load runs: applied again after it
    this.stats = { requests: 0, bytes: 0 };
    try {
      const n = Math.max(this.page, this.changes.length + extra);
      const br = this.branch ? `&branch=${encodeURIComponent(this.branch)}` : '';
      const [builders, changes] = await Promise.all([
        loadBuilders(),
        get(`changes?order=-changeid&limit=${n + 1}${br}&field=changeid&field=revision&field=author` +
          '&field=comments&field=branch&field=when_timestamp&field=revlink', 'changes'),
      ]);
      if (seq !== this.seq) return;
      const shown = changes.slice(0, n);
      const rows = shown.length ? await this.loadCells(shown.map((c) => c.changeid)) : [];
      if (seq !== this.seq) return;
      this.builders = builders;
      this.more = changes.length > n;
      this.changes = shown;
      this.cells = new Map();
      this.changesOf = new Map(); // the shown changes a build is the cell of: its events need no request
      for (const r of rows) {
        this.setCell(r.changeid, r);
        this.changesOf.set(r.buildid, [...(this.changesOf.get(r.buildid) ?? []), r.changeid]);
      }
      for (const [b, ids] of this.live) for (const id of ids) this.setCell(id, b);
      this.live = null;
      this.loaded = true;
      this.error = null;
    } catch (e) {
      this.error = e.message;
    }
    this.changed();
  }

  setCell(changeid, b) {
    let m = this.cells.get(changeid);
    if (!m) this.cells.set(changeid, (m = new Map()));
    const prev = m.get(b.builderid);
    if (prev && (prev.buildid > b.buildid || (prev.buildid === b.buildid && prev.complete))) return;
    m.set(b.builderid, b);
  }

  cell(change, builderid) {
    return this.cells.get(change.changeid)?.get(builderid);
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
    const b = { buildid: m.buildid, builderid: m.builderid, number: m.number, results: m.results,
      complete: m.complete, started_at: m.started_at, complete_at: m.complete_at,
      state_string: m.state_string };
    const ids = this.changesOf.get(m.buildid);
    if (ids) this.apply(b, ids);
    else this.queue(b);
    return undefined;
  }

  apply(b, ids) {
    this.live?.push([b, ids]);
    let hit = false;
    for (const id of ids) {
      if (!this.cells.has(id) && !this.changes.some((c) => c.changeid === id)) continue;
      this.setCell(id, b);
      hit = true;
    }
    if (hit) this.changed();
  }

  // Builds seen for the first time: the event names no change, so a build's
  // changes are read once (/builds/N/changes), gathered for LIVE_BATCH_MS;
  // a burst (a change built on hundreds of builders) reloads instead, in as
  // many requests as a load whatever the number of builds.
  queue(b) {
    this.pending.set(b.buildid, b);
    if (!this.timer) this.timer = setTimeout(() => this.flush(), LIVE_BATCH_MS);
  }

  async flush() {
    this.timer = null;
    const bs = [...this.pending.values()];
    this.pending.clear();
    if (this.changesOf.size + bs.length > KNOWN_BUILDS) this.changesOf.clear();
    if (bs.length > LIVE_ONE_BY_ONE) return this.load();
    await Promise.all(bs.map(async (x) => {
      try {
        const cs = await get(`builds/${x.buildid}/changes?field=changeid`, 'changes');
        const ids = cs.map((c) => c.changeid);
        this.changesOf.set(x.buildid, ids);
        this.apply(x, ids);
      } catch {
        // the next event or refetch catches up
      }
    }));
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
export function Cell({ b, builder, rev, change, x, y, w, h }) {
  if (!b) return null;
  const st = stateName(b);
  const label = `${builder?.name ?? ''} #${b.number}: ${st}${b.state_string ? ` (${b.state_string})` : ''}`;
  return html`<a class=${`cell r-${st}`} style=${`left:${x}px;top:${y}px;width:${w}px;height:${h}px`}
    href=${buildHref(builder, b)} data-builder=${builder?.name} data-revision=${rev}
    data-change=${change} data-buildid=${b.buildid} data-state=${st}
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
              title=${`${c.author}\n${c.branch ?? ''}\n${when(c.when_timestamp)}\n\n${c.comments}`}>
              <a class="chg" href=${`/changes/${c.changeid}`}><code>${(c.revision ?? '').slice(0, 10)}</code>${' '}
              ${c.branch ? html`<span class="dim">${c.branch}</span> ` : ''}<span class="who">${c.author}</span>${' '}
              <span class="dim">${firstLine(c.comments)}</span></a>
            </div>
            ${cols.map((b, j) => {
              const x = data.cell(c, b.builderid);
              return x && html`<${Cell} key=${b.builderid} b=${x} builder=${b} rev=${c.revision} change=${c.changeid}
                x=${infoW + (c0 + j) * COL_W + 3} y=${4} w=${COL_W - 6} h=${ROW_H - 8} />`;
            })}
          </div>`;
        })}
      </div>
    </div>
    ${data.more && html`<p><button type="button" onClick=${() => data.load(data.page)}>Older changes</button></p>`}
  </section>`;
}
