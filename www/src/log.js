// The log viewer (/logs/ID, and /builders/B/builds/N/steps/S/logs/SLUG):
// virtual scrolling over a log of any size (fixed line height, only the
// visible lines and a margin in the DOM, lines fetched in pages from
// /contents as they scroll into view, an LRU of pages), ANSI colours as
// spans (ansi.js, visible lines only), opens at the tail and follows a running
// log (log-live.js), #L123 deep links, and server-side search (/search).
import { useEffect, useRef, useState } from 'preact/hooks';
import { html } from './util.js';
import { ansiToJson } from './ansi.js';
import { get } from './api.js';
import { listen } from './live.js';
import { followLog } from './log-live.js';

const LINE_PX = 18; // fixed line height: app.css .log-line says the same
const PAGE = 500; // lines per /contents request
const MAX_PAGES = 40; // pages kept (LRU): 20,000 lines
const MARGIN = 40; // lines rendered above and below the visible ones
const MAX_FETCHES = 3; // page requests in flight
const MAX_PX = 1.5e7; // tallest spacer (browsers cap element heights): then scaled

// ---- ANSI --------------------------------------------------------------------------------

// xterm's 256-colour palette entry n (16..255) as "r, g, b"
function palette(n) {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `${v}, ${v}, ${v}`;
  }
  const c = n - 16;
  const k = (x) => (x ? 55 + x * 40 : 0);
  return `${k(Math.floor(c / 36))}, ${k(Math.floor(c / 6) % 6)}, ${k(c % 6)}`;
}

function colour(cls, truecolor) {
  if (!cls) return [null, null];
  if (cls === 'ansi-truecolor') return [null, `rgb(${truecolor})`];
  const m = /^ansi-palette-(\d+)$/.exec(cls);
  if (m) return +m[1] < 16 ? [null, null] : [null, `rgb(${palette(+m[1])})`];
  return [cls, null];
}

// One line's text as spans (never innerHTML: the text is data).
function Ansi({ text }) {
  if (!text.includes('\x1b')) return text;
  const parts = ansiToJson(text);
  return parts.map((p) => {
    const [fc, fs] = colour(p.fg, p.fg_truecolor);
    const [bc, bs] = colour(p.bg, p.bg_truecolor);
    const cls = [fc && `${fc}-fg`, bc && `${bc}-bg`, ...p.decorations.map((d) => `ansi-${d}`)];
    const style = (fs ? `color:${fs};` : '') + (bs ? `background:${bs};` : '');
    return html`<span class=${cls.filter(Boolean).join(' ')} style=${style}>${p.content}</span>`;
  });
}

// ---- the model: pages of lines --------------------------------------------------------------

class LogModel {
  constructor(logid, changed) {
    this.logid = logid;
    this.changed = changed; // called when what is shown may differ
    this.info = null; // the log as /api/v2/logs/ID gives it
    this.numLines = 0;
    this.pages = new Map(); // page number -> lines (stream character kept); LRU order
    this.inflight = new Set();
    this.error = null;
    this.gen = 0; // bumped by a refetch: older page answers are dropped
  }

  async loadInfo() {
    const [info] = await get(`logs/${this.logid}`, 'logs');
    if (!info) throw new Error(`no log ${this.logid}`);
    this.setInfo(info);
  }

  setInfo(info) {
    this.info = info;
    if (info.num_lines > this.numLines) this.numLines = info.num_lines;
    this.changed();
  }

  // Page p is missing, or is the last one and shorter than the log now is.
  stale(p) {
    const lines = this.pages.get(p);
    if (!lines) return true;
    return lines.length < PAGE && p * PAGE + lines.length < this.numLines;
  }

  line(i) {
    const lines = this.pages.get(Math.floor(i / PAGE));
    return lines ? lines[i % PAGE] : undefined;
  }

  // Fetches the pages of lines [first, last] that are missing or stale.
  want(first, last) {
    const lo = Math.max(0, Math.floor(first / PAGE));
    const hi = Math.floor(Math.min(last, this.numLines - 1) / PAGE);
    for (let p = lo; p <= hi; p++) {
      const lines = this.pages.get(p);
      if (lines) {
        this.pages.delete(p); // most recently used last
        this.pages.set(p, lines);
      }
      if (this.stale(p) && !this.inflight.has(p) && this.inflight.size < MAX_FETCHES) this.fetch(p);
    }
  }

  async fetch(p) {
    const gen = this.gen;
    this.inflight.add(p);
    try {
      const [chunk] = await get(`logs/${this.logid}/contents?offset=${p * PAGE}&limit=${PAGE}`, 'logchunks');
      if (gen !== this.gen) return;
      const text = chunk?.content ?? '';
      const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
      const have = this.pages.get(p);
      if (!have || lines.length >= have.length) {
        this.pages.delete(p);
        this.pages.set(p, lines);
      }
      if (p * PAGE + lines.length > this.numLines) this.numLines = p * PAGE + lines.length;
      this.evict(p);
      this.error = null;
    } catch (e) {
      this.error = e.message;
    } finally {
      this.inflight.delete(p);
      this.changed();
    }
  }

  evict(keep) {
    for (const p of this.pages.keys()) {
      if (this.pages.size <= MAX_PAGES) break;
      if (p !== keep) this.pages.delete(p);
    }
  }
}

// ---- search ---------------------------------------------------------------------------------

// One search step: {line} when found, {from} to go on from, {} when none.
async function searchStep(logid, q, icase, from, dir) {
  const args = new URLSearchParams({ q, from, dir, icase: icase ? '1' : '0' });
  const r = await fetch(`/api/v2/logs/${logid}/search?${args}`, { headers: { Accept: 'application/json' } });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(body?.error ?? `${r.status} ${r.statusText}`);
  if (body.matches?.length) return { line: body.matches[0].line };
  const next = body.meta?.continue_from;
  return next == null ? {} : { from: next };
}

function hashLine() {
  const m = /^#L(\d+)$/.exec(location.hash);
  return m ? Math.max(0, +m[1] - 1) : null;
}

// ---- the view -------------------------------------------------------------------------------

export function LogView({ logid, title }) {
  const scroller = useRef(null);
  const [, setTick] = useState(0);
  const st = useRef(null);
  if (!st.current) {
    const params = new URLSearchParams(location.search);
    st.current = {
      model: null,
      follow: hashLine() === null, // at the tail until the user scrolls up
      highlight: hashLine(),
      pendingJump: hashLine(),
      match: null,
      searching: null, // status text of a search in progress / its result
      searchGen: 0,
      q: params.get('q') ?? '',
      icase: params.get('icase') === '1',
      raf: 0,
      lastTop: -1,
      clicked: false, // the next hashchange comes from a line number's click
    };
  }
  const s = st.current;
  const redraw = () => {
    if (document.hidden || s.raf) return;
    s.raf = requestAnimationFrame(() => {
      s.raf = 0;
      setTick((t) => t + 1);
    });
  };
  if (!s.model || s.model.logid !== logid) s.model = new LogModel(logid, redraw);
  const model = s.model;

  useEffect(() => {
    let alive = true;
    let stop = null;
    const offLive = listen(() => {}); // the header's live/offline state; this log has its own socket
    const load = () => model.loadInfo().catch((e) => {
      model.error = e.message;
      redraw();
    });
    load().then(() => {
      if (!alive || model.info?.complete) return;
      stop = followLog(logid, (ev, log) => {
        if (ev === 'refetch') load();
        else if (log && log.logid === logid) model.setInfo(log);
        if (ev === 'finished' && stop) {
          stop();
          stop = null;
        }
      });
    });
    const onHash = () => {
      const l = hashLine();
      s.highlight = l;
      if (l !== null) {
        if (!s.clicked) s.pendingJump = l; // a clicked line number is in view already
        s.follow = false;
      }
      s.clicked = false;
      redraw();
    };
    const onVisible = () => !document.hidden && redraw();
    addEventListener('hashchange', onHash);
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      alive = false;
      offLive();
      if (stop) stop();
      if (s.raf) cancelAnimationFrame(s.raf);
      s.raf = 0;
      removeEventListener('hashchange', onHash);
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [logid]);

  // geometry: the spacer is numLines lines tall, scaled down past MAX_PX
  const el = scroller.current;
  const n = model.numLines;
  const viewPx = el ? el.clientHeight : 600;
  const fullPx = n * LINE_PX;
  const spacerPx = Math.min(fullPx, MAX_PX);
  const visible = Math.ceil(viewPx / LINE_PX) + 1;
  const maxScroll = Math.max(0, spacerPx - viewPx);
  const lineAt = (top) =>
    fullPx <= MAX_PX ? top / LINE_PX : maxScroll ? (top / maxScroll) * Math.max(0, n - viewPx / LINE_PX) : 0;
  const topFor = (line) =>
    fullPx <= MAX_PX ? line * LINE_PX : (line / Math.max(1, n - viewPx / LINE_PX)) * maxScroll;

  // scroll position after a render: at the tail when following, at a line when jumping
  useEffect(() => {
    const e = scroller.current;
    if (!e || !n) return;
    let want = null;
    if (s.pendingJump !== null && s.pendingJump < n) {
      want = Math.max(0, topFor(s.pendingJump) - viewPx / 2 + LINE_PX);
      s.pendingJump = null;
    } else if (s.follow) {
      want = e.scrollHeight - e.clientHeight;
    }
    if (want !== null && Math.abs(e.scrollTop - want) > 1) {
      e.scrollTop = want;
      s.lastTop = e.scrollTop;
      redraw();
    }
  });

  const onScroll = () => {
    const e = scroller.current;
    if (e.scrollTop === s.lastTop) return;
    s.lastTop = e.scrollTop;
    // the user moved: follow only while at the very bottom
    s.follow = e.scrollTop + e.clientHeight >= e.scrollHeight - 2;
    redraw();
  };

  const top = el ? el.scrollTop : 0;
  // where the view is about to be (the tail, a jump's line): fetch that, not the top
  let f = lineAt(top);
  if (s.pendingJump !== null && s.pendingJump < n) f = Math.max(0, s.pendingJump - visible / 2);
  else if (s.follow) f = Math.max(0, n - visible + 1);
  const first = Math.max(0, Math.floor(f) - MARGIN);
  const last = Math.min(n - 1, Math.floor(f) + visible + MARGIN);
  if (n && !document.hidden) model.want(Math.max(0, Math.floor(f) - 10), Math.floor(f) + visible + 10);
  if (n && !document.hidden) model.want(first, last);

  const type = model.info?.type;
  const rows = [];
  for (let i = first; i <= last; i++) {
    const raw = model.line(i);
    let cls = 'log-line';
    let text = raw ?? '';
    if (raw !== undefined && type === 's') {
      if (raw[0] === 'e') cls += ' log-err';
      else if (raw[0] === 'h') cls += ' log-hdr';
      text = raw.slice(1);
    }
    if (raw === undefined) cls += ' log-pending';
    if (i === s.highlight) cls += ' log-hl';
    if (i === s.match) cls += ' log-match';
    const y = fullPx <= MAX_PX ? i * LINE_PX : top + (i - f) * LINE_PX;
    rows.push(html`<div key=${i} class=${cls} style=${`top:${y}px`} data-line=${i + 1}>
      <a class="log-no" href=${`#L${i + 1}`} tabindex="-1">${i + 1}</a><span class="log-text"><${Ansi} text=${text} /></span>
    </div>`);
  }

  const search = async (dir) => {
    if (!s.q) return;
    const gen = ++s.searchGen;
    const cur = s.match ?? (dir === 'next' ? Math.floor(f) - 1 : Math.floor(f) + visible);
    let from = dir === 'next' ? cur + 1 : cur - 1;
    const u = new URL(location.href);
    u.searchParams.set('q', s.q);
    if (s.icase) u.searchParams.set('icase', '1');
    else u.searchParams.delete('icase');
    history.replaceState(null, '', u);
    try {
      while (from >= 0 && gen === s.searchGen) {
        s.searching = `searching from line ${from + 1}…`;
        redraw();
        const r = await searchStep(logid, s.q, s.icase, from, dir);
        if (gen !== s.searchGen) return;
        if (r.line !== undefined) {
          s.match = r.line;
          s.follow = false;
          // the match's line is the URL's (#L...): a reload or a copied link opens there
          s.highlight = null;
          u.hash = `#L${r.line + 1}`;
          history.replaceState(null, '', u);
          s.pendingJump = r.line;
          s.searching = `match at line ${r.line + 1}`;
          redraw();
          return;
        }
        if (r.from === undefined) break;
        from = r.from;
      }
      s.searching = `no ${dir === 'next' ? 'later' : 'earlier'} match`;
    } catch (e) {
      s.searching = `search failed: ${e.message}`;
    }
    redraw();
  };
  const onKey = (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      search(ev.shiftKey ? 'prev' : 'next');
    }
  };

  const info = model.info;
  return html`<section class="log-view">
    <div class="log-bar">
      <h1>${title}${info ? ` · ${info.name}` : ''}</h1>
      <span class="dim log-count" data-lines=${n} data-complete=${info?.complete ? 'yes' : 'no'}>
        ${n.toLocaleString()} lines${info && !info.complete ? ' · running' : ''}</span>
      <a href=${`/api/v2/logs/${logid}/raw`} download>raw</a>
      <span class="log-search" role="search">
        <input type="search" aria-label="Search the log" placeholder="search" value=${s.q}
          onInput=${(e) => { s.q = e.target.value; s.match = null; }} onKeyDown=${onKey} />
        <label><input type="checkbox" checked=${s.icase}
          onChange=${(e) => { s.icase = e.target.checked; s.match = null; }} /> ignore case</label>
        <button type="button" onClick=${() => search('prev')}>prev</button>
        <button type="button" onClick=${() => search('next')}>next</button>
        <span class="dim log-status" role="status">${s.searching}</span>
      </span>
      ${!s.follow && info && !info.complete && html`<button type="button" class="log-follow"
        onClick=${() => { s.follow = true; s.highlight = null; redraw(); }}>follow</button>`}
    </div>
    ${model.error && html`<p class="error" role="alert">${model.error}</p>`}
    <div class="log-scroll" ref=${scroller} onScroll=${onScroll} tabindex="0"
      onClick=${(e) => { if (e.target.closest('.log-no')) s.clicked = true; }}>
      <div class="log-spacer" style=${`height:${spacerPx}px`}>${rows}</div>
    </div>
  </section>`;
}

// /logs/ID
export function Log({ args: [id] }) {
  return html`<${LogView} logid=${+id} title=${`Log ${id}`} />`;
}

// /builders/B/builds/N/steps/S/logs/SLUG: resolved to its log id
export function StepLog({ args: [builder, number, step, slug] }) {
  const [res, setRes] = useState({ logid: null, error: null });
  useEffect(() => {
    let alive = true;
    (async () => {
      const [build] = await get(`builders/${encodeURIComponent(builder)}/builds/${encodeURIComponent(number)}`, 'builds');
      if (!build) throw new Error(`no build ${builder} #${number}`);
      const [log] = await get(
        `builds/${build.buildid}/steps/${encodeURIComponent(step)}/logs/${encodeURIComponent(slug)}`, 'logs');
      if (!log) throw new Error(`no log ${slug} in step ${step}`);
      if (alive) setRes({ logid: log.logid, error: null });
    })().catch((e) => alive && setRes({ logid: null, error: e.message }));
    return () => {
      alive = false;
    };
  }, [builder, number, step, slug]);
  if (res.error) return html`<p class="error" role="alert">${res.error}</p>`;
  if (res.logid === null) return html`<p class="dim">loading…</p>`;
  return html`<${LogView} logid=${res.logid}
    title=${html`<a href=${`/builders/${encodeURIComponent(builder)}`}>${builder}</a> #${number} · ${step}`} />`;
}
