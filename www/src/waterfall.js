// The waterfall (/waterfall): builders as columns, time flowing down (the
// newest at the top), each build a block as tall as it lasted (long idle
// gaps are shortened), coloured by its result; a running build reaches up
// to "now" and grows.  Builds come in bounded pages of one request for all
// builders ("older builds" reads the next page); columns and blocks are
// virtualised; /ws events keep it current.  Hovering or focusing a block
// shows its steps (read once, on demand); clicking opens the build page.
import { useEffect, useMemo, useReducer, useRef, useState } from 'preact/hooks';
import { html, span as dur, when } from './util.js';
import { get } from './api.js';
import { listen, isOnline } from './live.js';
import { useViewport, span } from './virtual.js';
import { readFilters, builderMatches, Filters, loadBuilders, buildHref, stateName, pageSize } from './console.js';

const PAGE = 500; // builds read at once (?limit=N: 1 to MAX_PAGE)
const MAX_PAGE = 2000;
const COL_W = 110;
const HEAD_H = 36;
const TIME_W = 70; // the time labels at the left
const PX_PER_S = 0.5; // a minute is 30 px ...
const MAX_GAP_PX = 48; // ... but an idle stretch is at most this tall ...
const MIN_H = 18; // ... and two distinct times at least this far apart (a block's number fits)
const TICK_MS = 5000; // running builds grow this often (only while some run and the tab is seen)
const FIELDS = ['buildid', 'builderid', 'number', 'results', 'complete', 'started_at', 'complete_at',
  'state_string', 'properties'].map((f) => `field=${f}`).join('&') + '&property=branch';

class Falls {
  constructor(changed, page) {
    this.changed = changed;
    this.page = page;
    this.builders = [];
    this.builds = new Map(); // buildid -> build
    this.oldest = null; // started_at of the oldest build read (the next page starts below it)
    this.more = false;
    this.loaded = false;
    this.error = null;
    this.seq = 0;
    this.timer = null;
    this.stale = false;
    this.live = null;
    this.version = 0; // bumped by every change of the builds or of "now": the layout's key
  }

  start() {
    const off = listen((k, m) => this.onEvent(k, m));
    const vis = () => {
      if (!document.hidden && this.stale) this.load();
      this.tick();
    };
    document.addEventListener('visibilitychange', vis);
    if (isOnline()) this.load();
    return () => {
      off();
      document.removeEventListener('visibilitychange', vis);
      clearInterval(this.timer);
      this.timer = null;
    };
  }

  // Running builds grow: a timer re-lays them out every few seconds, armed only while
  // some run and the tab is visible; nothing runs otherwise (no polling, no animation).
  tick() {
    const want = !document.hidden && [...this.builds.values()].some((b) => !b.complete);
    if (want && !this.timer) {
      this.timer = setInterval(() => {
        this.version++;
        this.changed();
      }, TICK_MS);
    }
    else if (!want && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  update() {
    this.version++;
    this.tick();
    this.changed();
  }

  async load() {
    const seq = ++this.seq;
    this.stale = false;
    this.live = []; // events that arrive while this load runs: applied again after it
    try {
      const [builders, recent, running] = await Promise.all([
        loadBuilders(),
        get(`builds?order=-started_at&limit=${this.page + 1}&${FIELDS}`, 'builds'),
        get(`builds?complete=false&${FIELDS}`, 'builds'),
      ]);
      if (seq !== this.seq) return;
      this.builders = builders;
      this.more = recent.length > this.page;
      const page = recent.slice(0, this.page);
      this.builds = new Map([...page, ...running].map((b) => [b.buildid, b]));
      for (const m of this.live) this.merge(m);
      this.live = null;
      this.oldest = page.length ? page[page.length - 1].started_at : null;
      this.loaded = true;
      this.error = null;
    } catch (e) {
      this.error = e.message;
    }
    this.update();
  }

  // the next page: n builds started before the oldest one read; asked as "at or before"
  // (the same second can hold several builds), with room for those already read
  async older() {
    if (this.oldest == null) return;
    try {
      const n = this.page;
      const same = [...this.builds.values()].filter((b) => b.started_at === this.oldest).length;
      const page = await get(`builds?order=-started_at&limit=${n + same + 1}` +
        `&started_at__le=${this.oldest}&${FIELDS}`, 'builds');
      const fresh = page.filter((b) => !this.builds.has(b.buildid)).slice(0, n);
      for (const b of fresh) this.builds.set(b.buildid, b);
      this.more = page.length > n + same;
      if (fresh.length) this.oldest = fresh[fresh.length - 1].started_at;
    } catch (e) {
      this.error = e.message;
    }
    this.update();
  }

  // an event's build over what is known of it (a finished build is never made running again)
  merge(m) {
    const prev = this.builds.get(m.buildid);
    if (prev?.complete && !m.complete) return prev;
    this.builds.set(m.buildid, { ...prev, ...m, properties: prev?.properties ?? {} });
    return prev;
  }

  async onEvent(k, m) {
    if (document.hidden) {
      this.stale = true; // a hidden tab does nothing: it reloads once seen
      return undefined;
    }
    if (k === 'refetch') return this.load();
    const [coll, , verb] = k.split('/');
    if (coll !== 'builds' || !m || (verb !== 'new' && verb !== 'finished')) return undefined;
    if (!this.builders.some((b) => b.builderid === m.builderid)) return this.load(); // new builder
    this.live?.push(m);
    const prev = this.merge(m);
    this.update();
    if (prev?.properties?.branch) return undefined;
    try {
      // the event carries no properties: the branch (for ?branch=) is read once per build
      const [b] = await get(`builds/${m.buildid}?field=properties&property=branch`, 'builds');
      const cur = this.builds.get(m.buildid);
      if (b && cur) this.builds.set(m.buildid, { ...cur, properties: b.properties });
      this.update();
    } catch {
      // shown without its branch until the next load
    }
    return undefined;
  }
}

// The time axis: each distinct start or end time (newest first) gets a y;
// the distance between two is their time apart, at least MIN_H (so short
// builds do not overlap) and at most MAX_GAP_PX (long idle stretches).
function timeAxis(builds, now) {
  const ts = new Set([now]);
  for (const b of builds) {
    ts.add(b.started_at);
    ts.add(b.complete ? b.complete_at ?? now : now);
  }
  const times = [...ts].filter((t) => t != null).sort((a, b) => b - a);
  const y = new Map();
  let at = 0;
  for (let i = 0; i < times.length; i++) {
    if (i) at += Math.max(MIN_H, Math.min(MAX_GAP_PX, (times[i - 1] - times[i]) * PX_PER_S));
    y.set(times[i], at);
  }
  return { y, times, height: at + MIN_H };
}

// the steps of finished builds, read once (the oldest forgotten past STEPS_CACHE)
const STEPS_CACHE = 200;
const stepsCache = new Map();

function Steps({ build }) {
  const [steps, setSteps] = useState(() => stepsCache.get(build.buildid) ?? null);
  useEffect(() => {
    let alive = true;
    const known = stepsCache.get(build.buildid);
    if (known) {
      setSteps(known);
      return undefined;
    }
    get(`builds/${build.buildid}/steps?field=number&field=name&field=results&field=complete` +
      '&field=started_at&field=complete_at&field=state_string', 'steps')
      .then((s) => {
        if (build.complete) {
          stepsCache.set(build.buildid, s);
          if (stepsCache.size > STEPS_CACHE) stepsCache.delete(stepsCache.keys().next().value);
        }
        if (alive) setSteps(s);
      }, () => alive && setSteps([]));
    return () => {
      alive = false;
    };
  }, [build.buildid, build.complete]);
  if (!steps) return html`<p class="dim">Loading steps…</p>`;
  return html`<ol class="steps">${steps.map((s) => html`<li key=${s.number}
    class=${`s-${stateName(s)}`}>${s.name}${' '}<span class="dim">${s.state_string}${
    s.started_at != null ? ` · ${dur((s.complete_at ?? Date.now() / 1000) - s.started_at)}` : ''}</span></li>`)}</ol>`;
}

export function Waterfall() {
  const [, bump] = useReducer((n) => n + 1, 0);
  const ref = useRef(null);
  const f = readFilters();
  if (!ref.current) ref.current = new Falls(bump, pageSize(f.limit, PAGE, MAX_PAGE));
  const data = ref.current;
  useEffect(() => data.start(), []);
  useEffect(() => { if (data.loaded) performance.mark('kiln:data'); }, [data.loaded]); // bench/ui.mjs
  const [hover, setHover] = useState(null);
  const box = useRef(null);
  const vp = useViewport(box);

  const shown = data.builders.filter((b) => builderMatches(b, f));
  const tags = [...new Set(data.builders.flatMap((b) => b.tags ?? []))].sort();
  // the layout changes with the data and the filters, not while scrolling
  const { col, builds, now, axis, lanes } = useMemo(() => {
    const col = new Map(shown.map((b, i) => [b.builderid, i]));
    const builds = [...data.builds.values()].filter((b) => col.has(b.builderid) &&
      (!f.branch || b.properties?.branch?.[0] === f.branch));
    const now = Date.now() / 1000;
    const axis = timeAxis(builds, now);
    // builds of one builder that overlap (run at once, or in the same second: times are whole
    // seconds) share its column side by side, one lane each, instead of hiding each other
    const lanes = new Map();
    const byCol = new Map();
    for (const b of builds) {
      const y0 = axis.y.get(b.complete ? b.complete_at ?? now : now);
      const y1 = Math.max(y0 + MIN_H, axis.y.get(b.started_at));
      const l = byCol.get(b.builderid) ?? [];
      l.push({ b, y0, y1 });
      byCol.set(b.builderid, l);
    }
    for (const l of byCol.values()) {
      l.sort((p, q) => p.y0 - q.y0 || q.b.buildid - p.b.buildid);
      let ends = []; // per lane of the current cluster of overlapping builds: its bottom
      let cl = [];
      const close = () => cl.forEach((e) => { e.n = ends.length; });
      for (const e of l) {
        if (!ends.some((y) => y > e.y0)) {
          close();
          ends = [];
          cl = [];
        }
        let i = ends.findIndex((y) => y <= e.y0);
        if (i < 0) i = ends.push(0) - 1;
        ends[i] = e.y1;
        e.lane = i;
        cl.push(e);
        lanes.set(e.b.buildid, e);
      }
      close();
    }
    return { col, builds, now, axis, lanes };
  }, [data.version, data.builders, f.name, f.tag, f.branch]);
  const [c0, c1] = span(vp.x, vp.w - TIME_W, shown.length, COL_W, 1);
  const top = vp.y - HEAD_H;
  const bottom = vp.y + vp.h;
  const blocks = [];
  for (const b of builds) {
    const c = col.get(b.builderid);
    if (c < c0 || c >= c1) continue;
    const y0 = HEAD_H + axis.y.get(b.complete ? b.complete_at ?? now : now);
    const y1 = Math.max(y0 + MIN_H, HEAD_H + axis.y.get(b.started_at));
    if (y1 < top || y0 > bottom) continue;
    const { lane, n } = lanes.get(b.buildid);
    const w = (COL_W - 4) / n;
    blocks.push({ b, x: TIME_W + c * COL_W + 2 + lane * w, w, y: y0, h: y1 - y0 });
  }
  // a time label every ~80 px of the visible stretch
  const labels = [];
  let lastY = -Infinity;
  for (const t of axis.times) {
    const y = HEAD_H + axis.y.get(t);
    if (y - lastY < 80 || y < top || y > bottom) continue;
    labels.push({ t, y });
    lastY = y;
  }
  const width = TIME_W + shown.length * COL_W;
  const height = HEAD_H + axis.height;
  const byId = new Map(shown.map((b) => [b.builderid, b]));

  return html`<section class="classic waterfall">
    <h1>Waterfall</h1>
    <${Filters} f=${f} tags=${tags} />
    ${data.error && html`<p class="error" role="alert">Cannot load: ${data.error}</p>`}
    ${!data.loaded && !data.error && html`<p class="dim">Loading…</p>`}
    <div class="vbox" ref=${box} data-builds=${builds.length} data-cols=${shown.length}>
      <div class="vplane" style=${`width:${width}px;height:${height}px`}>
        <div class="vhead" style=${`height:${HEAD_H}px;width:${width}px`}>
          ${shown.slice(c0, c1).map((b, i) => html`<a class="colname" key=${b.builderid}
            style=${`left:${TIME_W + (c0 + i) * COL_W}px;width:${COL_W}px;height:${HEAD_H}px`}
            href=${`/builders/${encodeURIComponent(b.name)}`} title=${b.name}>${b.name}</a>`)}
        </div>
        ${labels.map((l) => html`<span class="tlabel" key=${l.t} style=${`top:${l.y}px;width:${TIME_W}px`}
          title=${when(l.t)}>${new Date(l.t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}</span>`)}
        ${blocks.map(({ b, x, w, y, h }) => {
          const st = stateName(b);
          const builder = byId.get(b.builderid);
          return html`<a class=${`block r-${st}`} key=${b.buildid} href=${buildHref(builder, b)}
            style=${`left:${x}px;top:${y}px;width:${w}px;height:${h}px`}
            data-builder=${builder.name} data-number=${b.number} data-state=${st}
            title=${`${builder.name} #${b.number}: ${st} · ${b.state_string ?? ''}`}
            onMouseEnter=${() => setHover(b.buildid)} onFocus=${() => setHover(b.buildid)}>#${b.number}</a>`;
        })}
      </div>
    </div>
    ${data.more && html`<p><button type="button" onClick=${() => data.older()}>Older builds</button></p>`}
    ${hover != null && data.builds.has(hover) && html`<aside class="wf-detail" aria-live="polite">
      <strong>${byId.get(data.builds.get(hover).builderid)?.name} #${data.builds.get(hover).number}</strong>
      <span class="dim"> ${when(data.builds.get(hover).started_at)}</span>
      <button type="button" class="close" onClick=${() => setHover(null)} aria-label="close">×</button>
      <${Steps} build=${data.builds.get(hover)} />
    </aside>`}
  </section>`;
}
