// The app shell and its router: hash-free paths handled with the History
// API (a reload of any view's URL gets index.html from the master: its
// first segment is listed in www_views[] in src/master/www.c).
//
// Adding a view: a component in its own file, one line in ROUTES below,
// its first path segment in www_views[] (www.c), and a browser test.
import { useEffect, useState } from 'preact/hooks';
import { html } from './util.js';
import { onStatus } from './live.js';
import { Board } from './board.js';
import { Builder } from './builder.js';
import { Log, StepLog } from './log.js'; // slice "uilog"
import { Waterfall } from './waterfall.js';
import { Console } from './console.js';
import { Grid } from './grid.js';
import { Force } from './force.js';
import { Auth } from './auth.js'; // slice "weblogin"
import { Builders } from './builders.js';
import { Build } from './build.js';
import { Workers, Worker } from './workers.js'; // slice "uimisc"
import { Requests } from './requests.js'; // slice "uimisc"
import { Changes, Change } from './changes.js'; // slice "uichanges"
import { Schedulers } from './schedulers.js'; // slice "uichanges"
import { WatchPanel } from './notify.js'; // slice "notify"

// The header's links (spaced by app.css: .top nav a)
const NAV = [
  ['/', 'Status board'], ['/builders', 'Builders'], ['/waterfall', 'Waterfall'],
  ['/console', 'Console'], ['/grid', 'Grid'], ['/force', 'Force'], ['/workers', 'Workers'],
  ['/requests', 'Queue'],
  ['/changes', 'Changes'], ['/schedulers', 'Schedulers'], // slice "uichanges"
];

const ROUTES = [
  { re: /^\/$/, view: Board },
  { re: /^\/builders\/([^/]+)$/, view: Builder },
  { re: /^\/logs\/(\d+)$/, view: Log }, // slice "uilog"
  { re: /^\/builders\/([^/]+)\/builds\/(\d+)\/steps\/([^/]+)\/logs\/([^/]+)$/, view: StepLog },
  { re: /^\/waterfall$/, view: Waterfall },
  { re: /^\/console$/, view: Console },
  { re: /^\/grid$/, view: Grid },
  { re: /^\/force$/, view: Force },
  { re: /^\/force\/([^/]+)$/, view: Force },
  { re: /^\/builders$/, view: Builders },
  { re: /^\/builders\/([^/]+)\/builds\/(\d+)$/, view: Build },
  { re: /^\/builds\/(\d+)$/, view: Build },
  { re: /^\/workers$/, view: Workers }, // slice "uimisc"
  { re: /^\/workers\/([^/]+)$/, view: Worker },
  { re: /^\/requests$/, view: Requests },
  { re: /^\/changes$/, view: Changes }, // slice "uichanges"
  { re: /^\/changes\/(\d+)$/, view: Change },
  { re: /^\/schedulers$/, view: Schedulers },
];

export function navigate(url) {
  history.pushState(null, '', url);
  dispatchEvent(new PopStateEvent('popstate'));
}

// Same-origin links that are ours navigate without a reload.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest?.('a[href^="/"]');
  if (!a || a.target || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey)
    return;
  if (a.getAttribute('href').startsWith('/api/')) return;
  ev.preventDefault();
  navigate(a.getAttribute('href'));
});

function useLocation() {
  const [loc, setLoc] = useState(location.pathname + location.search);
  useEffect(() => {
    const fn = () => setLoc(location.pathname + location.search);
    addEventListener('popstate', fn);
    return () => removeEventListener('popstate', fn);
  }, []);
  return loc;
}

function Connection() {
  const [st, setSt] = useState(null);
  useEffect(() => onStatus(setSt), []);
  if (!st) return null;
  const text = st.online ? 'live' : st.everOnline ? 'offline: reconnecting' : 'connecting';
  return html`<span id="conn" class=${st.online ? 'conn on' : 'conn off'} role="status"
    data-online=${st.online ? 'yes' : 'no'}>${text}</span>`;
}

// The theme: the system's (auto), light or dark; the choice is kept in
// localStorage and set as <html data-theme> (app.css)
const THEMES = ['auto', 'light', 'dark'];
function storedTheme() {
  try {
    const t = localStorage.getItem('kiln-theme');
    return THEMES.includes(t) ? t : 'auto';
  } catch {
    return 'auto';
  }
}
function applyTheme(t) {
  if (t === 'auto') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}
applyTheme(storedTheme());

function ThemeButton() {
  const [t, setT] = useState(storedTheme);
  const next = THEMES[(THEMES.indexOf(t) + 1) % THEMES.length];
  const click = () => {
    try {
      localStorage.setItem('kiln-theme', next);
    } catch {
      // private mode: the choice lasts until the page is left
    }
    applyTheme(next);
    setT(next);
    dispatchEvent(new Event('kiln-theme')); // the charts (builder.js) repaint
  };
  return html`<button type="button" class="theme" data-theme=${t} onClick=${click}
    title=${`theme: ${t} (click for ${next})`} aria-label=${`theme ${t}, switch to ${next}`}>${
    t === 'auto' ? '◐ auto' : t === 'light' ? '☀ light' : '☾ dark'}</button>`;
}

// the master's title and title_url (master.lua), filled into index.html by www.c
const TITLE = document.body.dataset.title || 'Kiln';
const TITLE_URL = document.body.dataset.titleUrl || '';

export function App() {
  const loc = useLocation();
  const path = loc.split('?')[0];
  let view = null;
  let args = [];
  for (const r of ROUTES) {
    const m = r.re.exec(path);
    if (m) {
      view = r.view;
      args = m.slice(1).map(decodeURIComponent);
      break;
    }
  }
  return html`
    <header class="top">
      <a class="brand" href="/">${TITLE}</a>
      ${TITLE_URL && html`<a class="dim" href=${TITLE_URL} target="_blank" rel="noopener">project</a>`}
      <nav>${NAV.map(([href, text]) => html`<a href=${href}>${text}</a>`)}</nav>
      <${WatchPanel} />
      <${ThemeButton} />
      <${Connection} />
      <${Auth} />
    </header>
    <main>
      ${view
        ? html`<${view} key=${path} args=${args} />`
        : html`<p class="error">No such page: <code>${path}</code>. <a href="/">Status board</a></p>`}
    </main>`;
}
