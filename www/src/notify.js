// Browser notifications for watched builders (opt-in): the modern form of
// the seeds' desktop status client.
//
// - A builder is watched from its page (WatchToggle: "Watch" / "Watching",
//   and a mode: "state changes", the default, or "every build"); the
//   header's "Watched" panel (WatchPanel) lists them.  The list lives in
//   localStorage ("kiln.watch"), so it survives a reload and is shared by
//   the tabs of this master's origin.
// - Notification.requestPermission() is only called from a click.
// - startWatcher() (main.js, once per page, whatever the view) listens to
//   the page's /ws (live.js) while something is watched.  A watched
//   builder's builds/N/finished shows a Notification when its result
//   differs from the previous build's ("hello is broken (build 12)",
//   "hello is fixed (build 13)"), or on every build in "every build" mode.
//   A click on it focuses the tab and opens the build's page.
// - Each watch remembers its last finished build (result, complete_at)
//   and the ids of its newest finished builds (SEEN_MAX), so no build is
//   announced twice: not across reconnects and resyncs, not after a
//   reload.  After each (re)connect or resync it catches up from the API
//   (the builds finished since), and of those shows only the newest
//   notification per builder.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html, resultName } from './util.js';
import { get, eachLimited } from './api.js';
import { listen, isOnline } from './live.js';
import { navigate } from './router.js';

const KEY = 'kiln.watch';
const SEEN_MAX = 20; // finished build ids remembered per watched builder
const CATCHUP = 20; // finished builds read per builder after a (re)connect
const WATCH_MAX = 100; // watched builders (a catch-up is one request each)
const MODES = { changes: 'state changes', every: 'every build' };
const FIELDS = ['builderid', 'buildid', 'number', 'results', 'complete_at', 'state_string']
  .map((f) => `&field=${f}`).join('');

// { NAME: { id, mode, seen: [buildid...], last } }; last: undefined until
// the builder's newest finished build is known (then notifications start),
// null when it has none, else { buildid, number, results, at }
let watches = {};
let problem = null; // the last thing that went wrong, shown in the panel
let synced = 0; // catch-ups completed (data-synced on the panel: tests wait on it)
const subs = new Set();
let off = null; // unsubscribes the /ws listener

const isInt = (v) => Number.isInteger(v);

function read() {
  let raw;
  try {
    raw = localStorage.getItem(KEY);
  } catch {
    return watches; // no storage here (a privacy setting): the list lives in memory only
  }
  try {
    raw = JSON.parse(raw || '{}');
  } catch {
    return {};
  }
  const out = {};
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return out;
  for (const [name, w] of Object.entries(raw).slice(0, WATCH_MAX)) {
    if (!w || !isInt(w.id)) continue;
    const l = w.last;
    out[name] = {
      id: w.id,
      mode: MODES[w.mode] ? w.mode : 'changes',
      seen: Array.isArray(w.seen) ? w.seen.filter(isInt).slice(-SEEN_MAX) : [],
      last: l === null ? null : l && isInt(l.buildid) && typeof l.at === 'number'
        ? { buildid: l.buildid, number: l.number, results: l.results, at: l.at } : undefined,
    };
  }
  return out;
}

function changed() {
  for (const fn of subs) fn();
  const any = Object.keys(watches).length > 0;
  if (any && !off) {
    off = listen(onEvent);
    if (isOnline()) catchUp(); // no refetch comes for a listener added while online
  } else if (!any && off) {
    off();
    off = null;
  }
}

function save() {
  try {
    localStorage.setItem(KEY, JSON.stringify(watches));
  } catch (e) {
    problem = `the watched builders could not be saved (${e.message})`;
  }
  changed();
}

// What the browser allows: 'missing' (no Notification API), 'denied',
// 'default' (not asked yet, or the question was dismissed), 'granted'.
export function permission() {
  return typeof Notification === 'function' ? Notification.permission : 'missing';
}

function ask() {
  if (permission() !== 'default') return;
  try {
    Promise.resolve(Notification.requestPermission()).then(changed, changed);
  } catch {
    // a very old callback-only requestPermission: nothing to wait for
  }
}

export function watch(name, id) {
  if (watches[name]) return;
  if (Object.keys(watches).length >= WATCH_MAX) {
    problem = `at most ${WATCH_MAX} builders can be watched`;
    changed();
    return;
  }
  const listening = !!off; // else save() starts listening, and catches up if online
  watches = { ...read(), [name]: { id, mode: 'changes', seen: [], last: undefined } };
  save();
  if (listening) catchUp([name]); // learns the current state (no notification for it)
}

export function unwatch(name) {
  watches = read();
  delete watches[name];
  save();
}

export function setMode(name, mode) {
  watches = read();
  if (!watches[name] || !MODES[mode]) return;
  watches[name].mode = mode;
  save();
}

const good = (r) => r === 0 || r === 1; // success, warnings
const bad = (r) => r === 2 || r === 4; // failure, exception

// The notification for build b of NAME after a build whose result was prev
// (null: the builder had none), or null when there is nothing to say.
function message(name, mode, prev, b) {
  const n = b.number;
  const r = b.results;
  let title = null;
  if (prev !== null && good(r) && bad(prev)) title = `${name} is fixed (build ${n})`;
  else if (bad(r) && (prev === null || good(prev))) title = `${name} is broken (build ${n})`;
  else if ((prev !== null && r !== prev) || mode === 'every') title = `${name}: ${resultName(r)} (build ${n})`;
  if (!title) return null;
  const body = `${b.state_string || resultName(r)}${prev === null ? '' : `\nprevious build: ${resultName(prev)}`}`;
  return { title, body, tag: `kiln-watch-${name}`, url: `/builders/${encodeURIComponent(name)}/builds/${n}` };
}

// Records finished build b of NAME; its notification if it is news.
function apply(name, b) {
  const w = watches[name];
  if (!w || b.builderid !== w.id || !isInt(b.buildid) || typeof b.complete_at !== 'number') return null;
  if (w.seen.includes(b.buildid) || (w.last && b.complete_at < w.last.at)) return null;
  const prev = w.last === undefined ? undefined : w.last && w.last.results;
  w.seen = [...w.seen, b.buildid].slice(-SEEN_MAX);
  w.last = { buildid: b.buildid, number: b.number, results: b.results, at: b.complete_at };
  return prev === undefined ? null : message(name, w.mode, prev, b);
}

function show(note) {
  if (permission() !== 'granted') return;
  try {
    const n = new Notification(note.title, { body: note.body, tag: note.tag });
    n.onclick = () => {
      window.focus();
      n.close();
      navigate(note.url);
    };
  } catch (e) {
    // e.g. Chrome on Android: notifications only from a service worker
    problem = `this browser refused to show a notification (${e.message})`;
    changed();
  }
}

function onEvent(key, m) {
  if (key === 'refetch') {
    catchUp();
    return;
  }
  if (!m || !/^builds\/\d+\/finished$/.test(key)) return;
  if (!Object.values(watches).some((w) => w.id === m.builderid)) return;
  watches = read(); // another tab may have announced it already
  const name = Object.keys(watches).find((k) => watches[k].id === m.builderid);
  if (!name) return;
  const note = apply(name, m);
  save();
  if (note) show(note);
}

// Reads the builds of NAMES (all watched ones by default) finished since
// their last known one; shows the newest notification of each.
async function catchUp(names = Object.keys(watches)) {
  problem = null;
  await eachLimited(names, 4, async (name) => {
    const w = watches[name];
    if (!w) return;
    let builds;
    try {
      builds = await get(`builders/${w.id}/builds?complete=true&order=-complete_at&order=-buildid` +
        `&limit=${w.last === undefined ? 1 : CATCHUP}${FIELDS}`, 'builds');
    } catch (e) {
      problem = `${name}: ${e.message}`;
      return;
    }
    watches = read();
    let note = null;
    for (const b of builds.reverse()) note = apply(name, b) || note;
    if (watches[name] && watches[name].last === undefined) watches[name].last = null;
    save();
    if (note) show(note);
  });
  synced++;
  changed();
}

// Starts the watcher (once, from main.js): it follows this master's
// watched builders, and the other tabs' changes to the list.
export function startWatcher() {
  watches = read();
  addEventListener('storage', (e) => {
    if (e.key !== KEY && e.key !== null) return;
    watches = read();
    changed();
  });
  // the permission changed in the browser's site settings: say so at once
  navigator.permissions?.query({ name: 'notifications' }).then((st) => {
    st.onchange = changed;
  }, () => {});
  changed();
}

function useWatches() {
  const [, tick] = useState(0);
  useEffect(() => {
    const fn = () => tick((n) => n + 1);
    subs.add(fn);
    return () => subs.delete(fn);
  }, []);
  return watches;
}

// What the browser's state means for a watcher, in plain words (null: fine).
function PermissionNote({ watching }) {
  const p = permission();
  if (p === 'granted') return null;
  let text;
  if (p === 'missing') text = 'This browser cannot show notifications (it has no Notification API).';
  else if (p === 'denied' && !window.isSecureContext)
    text = 'Notifications are off: browsers allow them only on https:// pages (or localhost).';
  else if (p === 'denied') text = "Notifications are blocked for this site: allow them in the browser's site settings.";
  else if (!watching) return null;
  else text = 'Notifications are not allowed yet.';
  return html`<span class="watch-note" role="status" data-permission=${p}>${text}
    ${p === 'default' && html` <button type="button" onClick=${ask}>Allow notifications</button>`}</span>`;
}

function ModeSelect({ name, mode }) {
  return html`<select class="watch-mode" aria-label=${`notify about ${name} on`} value=${mode}
    onChange=${(e) => setMode(name, e.target.value)}>
    ${Object.entries(MODES).map(([k, v]) => html`<option value=${k}>${v}</option>`)}</select>`;
}

// The builder page's toggle (www/src/builder.js).
export function WatchToggle({ builder }) {
  const w = useWatches()[builder.name];
  const click = () => {
    if (w) {
      unwatch(builder.name);
      return;
    }
    ask(); // first, while the click still counts as the user's gesture
    watch(builder.name, builder.builderid);
  };
  return html`<span class="watch" data-watching=${w ? 'yes' : 'no'}>
    <button type="button" class="watch-toggle" aria-pressed=${w ? 'true' : 'false'}
      disabled=${!w && permission() === 'missing'} onClick=${click}
      title="Notify me when this builder's builds finish">${w ? 'Watching' : 'Watch'}</button>
    ${w && html`<${ModeSelect} name=${builder.name} mode=${w.mode} />`}
    <${PermissionNote} watching=${!!w} />
    ${problem && html`<span class="error" role="alert">${problem}</span>`}</span>`;
}

// The header's "Watched" panel: the watched builders, their modes, the
// browser's permission.
export function WatchPanel() {
  const ws = useWatches();
  const box = useRef(null);
  const names = Object.keys(ws).sort();
  // a link followed from the panel closes it
  const close = (e) => e.target.closest('a') && box.current && (box.current.open = false);
  return html`<details class="watch-panel" id="watched" ref=${box} data-synced=${synced}>
    <summary>Watched${names.length ? ` (${names.length})` : ''}</summary>
    <div class="watch-box" onClick=${close}>
      <h2>Watched builders</h2>
      <${PermissionNote} watching=${names.length > 0} />
      ${names.length
        ? html`<ul>${names.map((n) => html`<li key=${n} data-watch=${n}>
            <a href=${`/builders/${encodeURIComponent(n)}`}>${n}</a>
            <${ModeSelect} name=${n} mode=${ws[n].mode} />
            <button type="button" onClick=${() => unwatch(n)} aria-label=${`unwatch ${n}`}>Unwatch</button></li>`)}</ul>`
        : html`<p>No builder is watched: a builder's page has a <b>Watch</b> button.</p>`}
      ${problem && html`<p class="error" role="alert">${problem}</p>`}
    </div></details>`;
}
