// The status board ("what is broken now"), the default page: every
// builder's last result however old, its running builds with their current
// step and ETA, its queue length, the offline workers; filtered by tag and
// name (kept in the URL: /?tag=T&name=N).  Data: REST (every builder's last
// build in one request: /api/v2/lastbuilds), then /ws events (builds,
// requests, and step events for the current step of each running build).
import { useEffect, useReducer, useRef } from 'preact/hooks';
import { html, Result, ago, when, span, now } from './util.js';
import { get, eachLimited } from './api.js';
import { listen, onStatus, isOnline } from './live.js';
import { getAll, lastBuilds } from './builders.js';

// finished builds' fields (running ones are read whole: ETA fields cannot be picked)
const BUILD_FIELDS = ['buildid', 'builderid', 'number', 'results', 'complete', 'started_at',
  'complete_at', 'state_string'];
const fields = (names) => names.map((f) => `field=${f}`).join('&');
const BAD = new Set([2, 4, 5]); // failure, exception, retry

class BoardData {
  constructor(changed) {
    this.changed = changed;
    this.builders = [];
    this.last = new Map(); // builderid -> last finished build
    this.running = new Map(); // buildid -> running build
    this.steps = new Map(); // buildid -> its running step
    this.queue = new Map(); // buildrequestid -> unclaimed request
    this.workers = [];
    this.loaded = false;
    this.error = null;
    this.loading = null; // promise while a load runs
    this.again = false; // another load was asked for while one ran
    this.pending = []; // events that arrived during a load
    this.ticks = 0;
  }

  start() {
    const offs = [
      listen((k, m) => this.onEvent(k, m)),
      onStatus((s) => {
        // never online yet and the first connect failed: show what REST has
        if (!s.online && s.retryAt && !this.loaded && !this.loading) this.load();
      }),
    ];
    if (isOnline()) this.load();
    const timers = [
      // "5m ago" and progress bars: every second while builds run, else every 30 s
      setInterval(() => (this.running.size || ++this.ticks % 30 === 0) && this.changed(), 1000),
    ];
    return () => {
      offs.forEach((f) => f());
      timers.forEach(clearInterval);
    };
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
    this.changed();
    if (this.again) {
      this.again = false;
      this.load();
    }
  }

  async fetchAll() {
    const [[builders, lasts], running, queue, workers] = await Promise.all([
      getAll('builders?field=builderid&field=name&field=tags&field=description', 'builders').then(
        async (bs) => [bs, await lastBuilds(bs.length, `complete=true&${fields(BUILD_FIELDS)}`)]),
      get('builds?complete=false', 'builds'),
      get('buildrequests?claimed=false&complete=false&field=buildrequestid&field=builderid', 'buildrequests'),
      get('workers?field=workerid&field=name&field=connected_to&field=paused&field=last_seen', 'workers'),
    ]);
    const last = new Map(lasts.map((b) => [b.builderid, b]));
    this.builders = builders.sort((a, b) => a.name.localeCompare(b.name));
    this.last = last;
    this.running = new Map(running.map((b) => [b.buildid, b]));
    this.queue = new Map(queue.map((r) => [r.buildrequestid, r]));
    this.workers = workers;
    this.steps = new Map();
    // the current step of builds already running; then step events keep it
    await eachLimited([...this.running.keys()], 6, (id) => this.loadStep(id));
  }

  onEvent(k, m) {
    if (k === 'refetch') {
      this.load();
      return;
    }
    if (this.loading) this.pending.push([k, m]);
    else this.apply(k, m);
    this.changed();
  }

  apply(k, m) {
    const [coll, , verb] = k.split('/');
    if (!m) return;
    if (coll === 'workers') return this.pollWorkers(); // connected, disconnected, paused
    if (coll === 'builds' && verb === 'steps') {
      // builds/B/steps/S/new|started|finished: the newest step is the current one
      const cur = this.steps.get(m.buildid);
      if (this.running.has(m.buildid) && (!cur || cur.number <= m.number))
        this.steps.set(m.buildid, m);
      return;
    }
    if (coll === 'builds') {
      if (!this.builders.some((b) => b.builderid === m.builderid)) {
        this.load(); // a builder this page has not seen: the configuration changed
        return;
      }
      if (verb === 'new') {
        this.running.set(m.buildid, m);
      } else if (verb === 'finished') {
        this.running.delete(m.buildid);
        this.steps.delete(m.buildid);
        const prev = this.last.get(m.builderid);
        if (!prev || prev.buildid <= m.buildid) this.last.set(m.builderid, m);
      }
    } else if (coll === 'buildrequests') {
      if (verb === 'new' && !m.claimed && !m.complete) this.queue.set(m.buildrequestid, m);
      else if (verb === 'claimed' || verb === 'complete') this.queue.delete(m.buildrequestid);
    }
  }

  async loadStep(buildid) {
    try {
      const [s] = await get(`builds/${buildid}/steps?complete=false&order=-number&limit=1`, 'steps');
      if (!this.running.has(buildid)) return;
      if (s) this.steps.set(buildid, s);
      else this.steps.delete(buildid);
      this.changed();
    } catch {
      // the step events that follow fill it in; the banner tells about outages
    }
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

function Running({ build, step }) {
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
    <span class="step">${step ? step.name : 'starting'}</span> ${eta}
    <span class="dim">${span(t - build.started_at)}</span>
  </div>`;
}

function Row({ b, data }) {
  const last = data.last.get(b.builderid);
  const running = [...data.running.values()].filter((r) => r.builderid === b.builderid);
  let queued = 0;
  for (const r of data.queue.values()) if (r.builderid === b.builderid) queued++;
  const href = `/builders/${encodeURIComponent(b.name)}`;
  return html`<tr data-builder=${b.name} class=${last && BAD.has(last.results) ? 'bad' : ''}>
    <td class="name"><a href=${href}>${b.name}</a>
      ${(b.tags ?? []).map((t) => html` <a class="tag" href=${`/?tag=${encodeURIComponent(t)}`}>${t}</a>`)}</td>
    <td class="last">${last
      ? html`<${Result} results=${last.results} />${' '}<span title=${when(last.complete_at)}
          data-number=${last.number}>#${last.number} · ${ago(last.complete_at)}</span>${' '}<span
          class="dim">${last.state_string}</span>`
      : html`<span class="dim">no builds yet</span>`}</td>
    <td class="now">${running.map((r) => html`<${Running} build=${r} step=${data.steps.get(r.buildid)} />`)}</td>
    <td class="queue" data-queue=${queued}>${queued ? `${queued} queued` : ''}</td>
  </tr>`;
}

export function Board() {
  const [, bump] = useReducer((n) => n + 1, 0);
  const ref = useRef(null);
  if (!ref.current) ref.current = new BoardData(bump);
  const data = ref.current;
  useEffect(() => data.start(), []);
  useEffect(() => { if (data.loaded) performance.mark('kiln:data'); }, [data.loaded]); // bench/ui.mjs
  const { tag, name } = useQuery();

  const tags = [...new Set(data.builders.flatMap((b) => b.tags ?? []))].sort();
  const needle = name.toLowerCase();
  const shown = data.builders.filter((b) => (!tag || (b.tags ?? []).includes(tag)) &&
    (!needle || b.name.toLowerCase().includes(needle)));
  // broken first: what needs a look is at the top
  const bad = (b) => BAD.has(data.last.get(b.builderid)?.results);
  shown.sort((a, b) => bad(b) - bad(a));
  const offline = data.workers.filter((w) => !w.connected_to?.length);
  const failing = data.builders.filter(bad).length;

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
        ${tags.map((t) => html`<option value=${t}>${t}</option>`)}
      </select></label>
    </form>
    ${!data.loaded && !data.error ? html`<p class="dim">Loading…</p>` : html`
    <table class="builders">
      <thead><tr><th>Builder</th><th>Last result</th><th>Now</th><th>Queue</th></tr></thead>
      <tbody>${shown.map((b) => html`<${Row} key=${b.builderid} b=${b} data=${data} />`)}</tbody>
    </table>
    ${shown.length === 0 && html`<p class="dim">No builder matches.</p>`}`}
  </section>`;
}

