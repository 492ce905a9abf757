// The /ws subscription of one log (the log viewer's): its own socket
// consuming only "logs/ID/*", so that the master's append hook finds a
// subscriber only while someone looks at that log.  Reconnects with capped
// exponential backoff and jitter; after every (re)connect, once subscribed,
// it asks the viewer to refetch the log's metadata (nothing missed offline).
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;

// followLog(logid, fn): fn(event, log) for 'append' / 'finished' / 'new'
// with the log as /api/v2/logs/ID renders it, fn('refetch') when the view
// must reload the log's metadata.  Returns the function that stops it.
export function followLog(logid, fn) {
  let ws = null;
  let backoff = BACKOFF_MIN_MS;
  let timer = null;
  let stopped = false;
  const path = `logs/${logid}/*`;

  const connect = () => {
    timer = null;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const sock = new WebSocket(`${proto}//${location.host}/ws`);
    ws = sock;
    sock.onopen = () => sock.send(JSON.stringify({ cmd: 'startConsuming', path, _id: 1 }));
    sock.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.k === 'resync') {
        fn('refetch');
      } else if (typeof msg.k === 'string') {
        fn(msg.k.split('/')[2], msg.m);
      } else if (msg._id === 1 && msg.code === 200) {
        backoff = BACKOFF_MIN_MS;
        fn('refetch');
      }
    };
    sock.onclose = () => {
      if (ws !== sock || stopped) return;
      ws = null;
      const delay = Math.min(backoff, BACKOFF_MAX_MS) * (0.75 + Math.random() * 0.5);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      timer = setTimeout(connect, delay);
    };
  };
  connect();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    if (ws) ws.close();
    ws = null;
  };
}
