// The status board ("what is broken now"), the default page: every
// builder's last result however old, its running builds with their current
// step (and that step's state string, live) and ETA, its queue length, the
// offline workers; filtered by tag and name (kept in the URL:
// /?tag=T&name=N), broken builders first.  Data: REST (every builder's last
// build in one request: /api/v2/lastbuilds; the running builds' current
// steps in one: /api/v2/steps?complete=false), then /ws events (builds,
// requests, and step events for the current step of each running build,
// "updated" ones included).
//
// Built for a thousand builders: only the rows in view (plus a margin) are
// in the DOM (vtable.js, on the window's scroll); each row is drawn from a
// per-builder view object that an event replaces only for the builder it
// concerns, and rows re-render only when theirs changed.  Nothing runs while
// nothing changes: the one timer (durations, ETA bars) ticks only while
// builds run and the tab is visible.  Keys: j / ArrowDown and k / ArrowUp
// move the selection, Enter opens the selected builder.
import { Component } from 'preact';
import { useEffect, useReducer, useRef, useState } from 'preact/hooks';
import { html, Result, ago, when, span, now } from './util.js';
import { get } from './api.js';
import { listen } from './live.js';
import { subscribed } from './catchup.js';
import { lastBuilds } from './builders.js';
import { getAll } from './api.js';
import { useWindowRows, useRowHeight, scrollRowIntoView } from './vtable.js';

// finished builds' fields (running ones are read whole: ETA fields cannot be picked)
const BUILD_FIELDS = ['buildid', 'builderid', 'number', 'results', 'complete', 'started_at',
  'complete_at', 'state_string'];
// the fields of a running step the board shows or keeps up to date
const STEP_FIELDS = ['stepid', 'buildid', 'number', 'name', 'state_string', 'complete', 'started_at'];
const fields = (names) => names.map((f) => `field=${f}`).join('&');
const BAD = new Set([2, 4, 5]); // failure, exception, retry
const ROW_PX = 37; // a row's height until one is measured (app.css: .board-table tr)

// the running steps of the running builds `rb`, in one request: steps not
// complete from the oldest running build on, in build order (the index on
// steps' buildid serves both, so not all the steps of history are scanned)
async function runningSteps(rb) {
  if (!rb.length) return [];
  const min = Math.min(...rb.map((b) => b.buildid));
  return get(`steps?complete=false&buildid__ge=${min}&order=buildid&${fields(STEP_FIELDS)}`, 'steps');
}

class BoardData {
  constructor(changed) {
    this.changed = changed;
    this.builders = [];
    this.byId = new Map(); // builderid -> builder
    this.last = new Map(); // builderid -> last finished build
    this.running = new Map(); // buildid -> running build
    this.steps = new Map(); // buildid -> its running step
    this.queue = new Map(); // buildrequestid -> unclaimed request
    this.views = new Map(); // builderid -> { last, running, steps, queued }: a row's data, cached
    this.workers = [];
    this.loaded = false;
    this.error = null;
    this.loading = null; // promise while a load runs
    this.again = false; // another load was asked for while one ran
    this.pending = []; // events that arrived during a load
    this.order = 0; // bumped when the rows' order or set may have changed (results, builders)
    this.tick = 0; // bumped each second while builds run: their durations
    this.timer = null;
  }

  start() {
    const offs = [
      listen((k, m) => this.onEvent(k, m)),
    ];
    const vis = () => {
      this.clock();
      if (!document.hidden) this.changed(); // "5m ago" caught up once
    };
    document.addEventListener('visibilitychange', vis);
    // loaded at once, in parallel with the /ws connect: the builder list at
    // once, what events change once /ws is subscribed (catchup.js), once
    this.gate = subscribed();
    this.load();
    return () => {
      this.gate.close();
      offs.forEach((f) => f());
      document.removeEventListener('visibilitychange', vis);
      clearInterval(this.timer);
      this.timer = null;
    };
  }

  // the one timer: every second while builds run and the tab is visible
  clock() {
    const want = this.running.size > 0 && !document.hidden;
    if (want && !this.timer) {
      this.timer = setInterval(() => {
        this.tick++;
        this.changed();
      }, 1000);
    } else if (!want && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  // a row's data: the same object until an event concerns that builder
  view(builderid) {
    let v = this.views.get(builderid);
    if (!v) {
      const running = [];
      for (const r of this.running.values()) if (r.builderid === builderid) running.push(r);
      let queued = 0;
      for (const r of this.queue.values()) if (r.builderid === builderid) queued++;
      v = { last: this.last.get(builderid), running, steps: running.map((r) => this.steps.get(r.buildid)), queued };
      this.views.set(builderid, v);
    }
    return v;
  }

  touch(builderid) {
    this.views.delete(builderid);
  }

  async load() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = this.fetchAll();
    try {
      await this.loading;
      this.error = null;
      this.loaded = true;
    } catch (e) {
      this.error = e.message;
    }
    this.loading = null;
    const pending = this.pending;
    this.pending = [];
    for (const [k, m] of pending) this.apply(k, m);
    this.views.clear();
    this.order++;
    this.clock();
    this.changed();
    if (this.again) {
      this.again = false;
      this.load();
    }
  }

  async fetchAll() {
    // the builder list at once (no event changes it), the rest once /ws is
    // subscribed (catchup.js): 6 requests at most, in 2 rounds
    const sub = this.gate.wait;
    const after = (f) => sub.then(f);
    const [[builders, lasts], [running, steps], queue, workers] = await Promise.all([
      getAll('builders?field=builderid&field=name&field=tags&field=description', 'builders').then(
        async (bs) => [bs, await after(() => lastBuilds(bs.length, `complete=true&${fields(BUILD_FIELDS)}`))]),
      after(() => get('builds?complete=false', 'builds')).then(async (rb) => [rb, await runningSteps(rb)]),
      after(() => get('buildrequests?claimed=false&complete=false&field=buildrequestid&field=builderid',
        'buildrequests')),
      after(() => get('workers?field=workerid&field=name&field=connected_to&field=paused&field=last_seen', 'workers')),
    ]);
    const last = new Map(lasts.map((b) => [b.builderid, b]));
    this.builders = builders.sort((a, b) => a.name.localeCompare(b.name));
    this.byId = new Map(builders.map((b) => [b.builderid, b]));
    this.last = last;
    this.running = new Map(running.map((b) => [b.buildid, b]));
    this.queue = new Map(queue.map((r) => [r.buildrequestid, r]));
    this.workers = workers;
    this.steps = new Map();
    for (const s of steps) {
      // the current step of builds already running (the newest of each); then step events keep it
      const cur = this.steps.get(s.buildid);
      if (this.running.has(s.buildid) && (!cur || cur.number < s.number)) this.steps.set(s.buildid, s);
    }
    this.views.clear();
  }

  onEvent(k, m) {
    if (k === 'refetch') {
      // the first subscription only lets the first load go on (catchup.js)
      if (!this.gate.takeAck()) this.load();
      return;
    }
    if (this.loading) this.pending.push([k, m]);
    else if (this.apply(k, m) !== false) this.changed();
  }

  // applies one event; false when it changed nothing shown
  apply(k, m) {
    const [coll, , verb] = k.split('/');
    if (!m) return false;
    if (coll === 'workers') {
      this.pollWorkers(); // connected, disconnected, paused
      return false;
    }
    if (coll === 'builds' && verb === 'steps') {
      // builds/B/steps/S/new|started|updated|finished: the newest step is the current one
      const build = this.running.get(m.buildid);
      const cur = this.steps.get(m.buildid);
      if (!build || (cur && cur.number > m.number)) return false;
      this.steps.set(m.buildid, m);
      this.touch(build.builderid);
      return true;
    }
    if (coll === 'builds') {
      if (!this.byId.has(m.builderid)) {
        this.load(); // a builder this page has not seen: the configuration changed
        return false;
      }
      if (verb === 'new') {
        this.running.set(m.buildid, m);
      } else if (verb === 'finished') {
        this.running.delete(m.buildid);
        this.steps.delete(m.buildid);
        const prev = this.last.get(m.builderid);
        if (!prev || prev.buildid <= m.buildid) {
          if (BAD.has(prev?.results) !== BAD.has(m.results)) this.order++;
          this.last.set(m.builderid, m);
        }
      } else {
        return false;
      }
      this.touch(m.builderid);
      this.clock();
      return true;
    }
    if (coll === 'buildrequests') {
      if (verb === 'new' && !m.claimed && !m.complete) this.queue.set(m.buildrequestid, m);
      else if ((verb === 'claimed' || verb === 'complete') && this.queue.has(m.buildrequestid)) {
        m = this.queue.get(m.buildrequestid);
        this.queue.delete(m.buildrequestid);
      } else return false;
      this.touch(m.builderid);
      return true;
    }
    return false;
  }

  async pollWorkers() {
    try {
      this.workers = await get('workers?field=workerid&field=name&field=connected_to&field=paused&field=last_seen',
        'workers');
      this.changed();
    } catch {
      // as above
    }
  }
}

function useQuery() {
  const q = new URLSearchParams(location.search);
  return { tag: q.get('tag') ?? '', name: q.get('name') ?? '' };
}

function setQuery(tag, name) {
  const q = new URLSearchParams();
  if (tag) q.set('tag', tag);
  if (name) q.set('name', name);
  const s = q.toString();
  history.replaceState(null, '', s ? `/?${s}` : '/');
  dispatchEvent(new PopStateEvent('popstate'));
}

function Running({ build, step, more }) {
  const t = now();
  let eta = null;
  if (build.eta_at != null && build.started_at != null && build.eta_at > build.started_at) {
    const pct = Math.min(100, (100 * (t - build.started_at)) / (build.eta_at - build.started_at));
    eta = html`<progress max="100" value=${pct}></progress>
      <span class="dim">${t < build.eta_at ? `ETA ${span(build.eta_at - t)}` : 'overdue'}</span>`;
  }
  return html`<div class="running" data-running=${build.number}>
    <span class="badge r-running">running</span>
    <a href=${`/builders/${build.builderid}/builds/${build.number}`}>#${build.number}</a>
    <span class="step">${step ? step.name : 'starting'}</span>
    ${step?.state_string && html`<span class="dim state" title=${step.state_string}>${step.state_string}</span>`}
    ${eta}
    <span class="dim">${span(t - build.started_at)}</span>
    ${more > 0 && html`<span class="dim more">+${more} running</span>`}
  </div>`;
}

// One builder's row: re-rendered only when its view object (replaced by
// the events that concern it), its selection or, while it runs builds, the
// second's tick changed.
class Row extends Component {
  shouldComponentUpdate(n) {
    const p = this.props;
    return p.b !== n.b || p.v !== n.v || p.sel !== n.sel || p.tick !== n.tick;
  }

  render({ b, v, sel }) {
    const { last, running, steps, queued } = v;
    const href = `/builders/${encodeURIComponent(b.name)}`;
    const cls = `${last && BAD.has(last.results) ? 'bad' : ''}${sel ? ' sel' : ''}`;
    return html`<tr data-builder=${b.name} class=${cls} aria-selected=${sel ? 'true' : undefined}>
      <td class="name"><a href=${href}>${b.name}</a>
        ${(b.tags ?? []).map((t) => html` <a class="tag" href=${`/?tag=${encodeURIComponent(t)}`}>${t}</a>`)}</td>
      <td class="last">${last
        ? html`<${Result} results=${last.results} />${' '}<span title=${when(last.complete_at)}
            data-number=${last.number}>#${last.number} · ${ago(last.complete_at)}</span>${' '}<span
            class="dim">${last.state_string}</span>`
        : html`<span class="dim">no builds yet</span>`}</td>
      <td class="now">${running.length > 0 &&
        html`<${Running} build=${running[0]} step=${steps[0]} more=${running.length - 1} />`}</td>
      <td class="queue" data-queue=${queued}>${queued ? `${queued} queued` : ''}</td>
    </tr>`;
  }
}

function navigate(url) {
  history.pushState(null, '', url);
  dispatchEvent(new PopStateEvent('popstate'));
}

// the rows shown, in order: filtered, broken first, then by name (cached
// until the builders, a result's badness or the filter change)
function useShown(data, tag, name) {
  const memo = useRef({ key: null, rows: [] });
  const key = `${data.order}\u0000${tag}\u0000${name}`;
  if (memo.current.key !== key) {
    const needle = name.toLowerCase();
    const bad = (b) => BAD.has(data.last.get(b.builderid)?.results);
    const rows = data.builders.filter((b) => (!tag || (b.tags ?? []).includes(tag)) &&
      (!needle || b.name.toLowerCase().includes(needle)));
    rows.sort((a, b) => bad(b) - bad(a)); // stable: by name within each group
    memo.current = { key, rows };
  }
  return memo.current.rows;
}

function Rows({ data, shown }) {
  const wrap = useRef(null);
  const body = useRef(null);
  const head = useRef(null);
  const rowH = useRowHeight(body, ROW_PX);
  const { first, end, top, bottom } = useWindowRows(wrap, shown.length, rowH);
  const [selId, setSel] = useState(null);
  const selAt = selId == null ? -1 : shown.findIndex((b) => b.builderid === selId);

  // j / k / arrows move, Enter opens; not while typing in the filters
  const keys = useRef(null);
  keys.current = (ev) => {
    if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.target.closest?.('a, input, select, textarea, button, [contenteditable]')) return;
    if (!shown.length) return;
    const headH = head.current?.offsetHeight ?? 0;
    // nothing selected yet: the first key selects the first row in view
    const inView = () => Math.min(shown.length - 1,
      Math.max(0, Math.ceil((-(wrap.current?.getBoundingClientRect().top ?? 0)) / rowH)));
    let to = null;
    if (ev.key === 'j' || ev.key === 'ArrowDown') to = selAt < 0 ? inView() : Math.min(shown.length - 1, selAt + 1);
    else if (ev.key === 'k' || ev.key === 'ArrowUp') to = selAt < 0 ? inView() : Math.max(0, selAt - 1);
    else if (ev.key === 'Enter' && selAt >= 0) {
      ev.preventDefault();
      navigate(`/builders/${encodeURIComponent(shown[selAt].name)}`);
      return;
    } else return;
    ev.preventDefault();
    setSel(shown[to].builderid);
    scrollRowIntoView(wrap, to, rowH, headH);
  };
  useEffect(() => {
    const on = (ev) => keys.current(ev);
    document.addEventListener('keydown', on);
    return () => document.removeEventListener('keydown', on);
  }, []);

  const rows = [];
  for (let i = first; i < end; i++) {
    const b = shown[i];
    const v = data.view(b.builderid);
    rows.push(html`<${Row} key=${b.builderid} b=${b} v=${v} sel=${i === selAt}
      tick=${v.running.length ? data.tick : 0} />`);
  }
  return html`<div class="vtable" ref=${wrap} style=${`padding-top:${top}px;padding-bottom:${bottom}px`}
      data-rows=${shown.length} data-first=${first}>
    <table class="builders board-table">
      <thead ref=${head}><tr><th>Builder</th><th>Last result</th><th>Now</th><th>Queue</th></tr></thead>
      <tbody ref=${body}>${rows}</tbody>
    </table>
  </div>`;
}

export function Board() {
  const [, bump] = useReducer((n) => n + 1, 0);
  const ref = useRef(null);
  if (!ref.current) ref.current = new BoardData(bump);
  const data = ref.current;
  useEffect(() => data.start(), []);
  useEffect(() => { if (data.loaded) performance.mark('kiln:data'); }, [data.loaded]); // bench/ui.mjs
  const { tag, name } = useQuery();

  const shown = useShown(data, tag, name);
  const tags = useRef({ order: -1, list: [] });
  if (tags.current.order !== data.order) {
    tags.current = { order: data.order, list: [...new Set(data.builders.flatMap((b) => b.tags ?? []))].sort() };
  }
  const offline = data.workers.filter((w) => !w.connected_to?.length);
  let failing = 0;
  for (const l of data.last.values()) if (BAD.has(l.results) && data.byId.has(l.builderid)) failing++;

  return html`<section class="board">
    <h1>Status board</h1>
    ${data.error && html`<p class="error" role="alert">Cannot load: ${data.error}</p>`}
    <p class="summary">
      <span>${data.builders.length} builders</span>
      <span class=${failing ? 'bad' : ''} data-failing=${failing}>${failing} failing</span>
      <span data-running-count=${data.running.size}>${data.running.size} running</span>
      <span>${data.queue.size} queued</span>
      <span class=${offline.length ? 'bad' : ''}>${offline.length} of ${data.workers.length} workers offline</span>
    </p>
    ${offline.length > 0 && html`<p class="offline-workers">Offline: ${offline.map((w) =>
      html`<a class="worker" data-worker=${w.name} href=${`/workers/${encodeURIComponent(w.name)}`}
        title=${w.last_seen ? `last seen ${when(w.last_seen)}` : 'never connected'}>${w.name}</a>${' '}<span class="since">${w.last_seen ? `(last seen ${ago(w.last_seen)})` : '(never seen)'}</span> `)}</p>`}
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label>Name <input type="search" name="name" value=${name}
        onInput=${(e) => setQuery(tag, e.currentTarget.value)} /></label>
      <label>Tag <select name="tag" value=${tag} onChange=${(e) => setQuery(e.currentTarget.value, name)}>
        <option value="">any</option>
        ${tags.current.list.map((t) => html`<option value=${t}>${t}</option>`)}
      </select></label>
      <span class="dim keys">j/k or ↑/↓ to move, Enter to open</span>
    </form>
    ${!data.loaded && !data.error ? html`<p class="dim">Loading…</p>` : html`
    <${Rows} data=${data} shown=${shown} />
    ${shown.length === 0 && html`<p class="dim">No builder matches.</p>`}`}
  </section>`;
}
