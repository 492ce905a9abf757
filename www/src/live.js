// The live event stream: one WebSocket to /ws for the whole page, speaking
// Buildbot's protocol (startConsuming, {"k","m"} events).  It reconnects
// with capped exponential backoff and jitter, and after every (re)connect
// and every "resync" it tells listeners to refetch what they show: events
// missed while offline are never silently lost.
const PATHS = ['builds/*/*', 'buildrequests/*/*', 'changes/*/*', 'builds/*/steps/*/*', 'workers/*/*'];
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;

const listeners = new Set(); // fn(key, msg): key "refetch" means reload everything
const statusListeners = new Set(); // fn(status)
let status = { online: false, retryAt: null, everOnline: false };
let ws = null;
let backoff = BACKOFF_MIN_MS;
let nextId = 1;
let started = false;

function setStatus(s) {
  status = { ...status, ...s };
  for (const fn of statusListeners) fn(status);
}

function emit(key, msg) {
  for (const fn of listeners) fn(key, msg);
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const sock = new WebSocket(`${proto}//${location.host}/ws`);
  ws = sock;
  let acked = 0;
  sock.onopen = () => {
    for (const path of PATHS) sock.send(JSON.stringify({ cmd: 'startConsuming', path, _id: nextId++ }));
  };
  sock.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (msg.k === 'resync') {
      emit('refetch', msg.m);
    } else if (typeof msg.k === 'string') {
      emit(msg.k, msg.m);
    } else if (msg.code === 200 && ++acked === PATHS.length) {
      // subscribed to everything: from here on no event is missed, so
      // what was fetched before (or while offline) is refetched now
      backoff = BACKOFF_MIN_MS;
      setStatus({ online: true, retryAt: null, everOnline: true });
      emit('refetch', null);
    }
  };
  sock.onclose = () => {
    if (ws !== sock) return;
    ws = null;
    const delay = Math.min(backoff, BACKOFF_MAX_MS) * (0.75 + Math.random() * 0.5);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    setStatus({ online: false, retryAt: Date.now() + delay });
    setTimeout(connect, delay);
  };
}

// listen(fn): fn(key, msg) for every event, and fn('refetch') when the view
// must reload its data.  Returns the unsubscribe function.
export function listen(fn) {
  listeners.add(fn);
  if (!started) {
    started = true;
    connect();
  }
  return () => listeners.delete(fn);
}

// newest(): a ticket machine for overlapping refetches.  Each load takes a
// ticket (const current = take()) and applies its answer only while
// current() holds, i.e. no later load started meanwhile: two events in a
// row start two fetches whose answers can arrive in either order, and the
// older answer must not overwrite the newer one (it would hide what the
// second event announced until the next event).
export function newest() {
  let n = 0;
  return () => {
    const mine = ++n;
    return () => mine === n;
  };
}

export function onStatus(fn) {
  statusListeners.add(fn);
  fn(status);
  return () => statusListeners.delete(fn);
}

export function isOnline() {
  return status.online;
}
