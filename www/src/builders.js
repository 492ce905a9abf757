// The builders list (/builders): every builder with its tags and its last
// finished build however old (one request: /api/v2/lastbuilds), filtered
// by name and tag (in the URL: /builders?name=N&tag=T).  Only the rows in
// view are rendered, so thousands of builders stay fast; finished builds
// arriving on /ws update their row.
import { useEffect, useReducer, useRef, useState } from 'preact/hooks';
import { html, Result, ago, when } from './util.js';
import { get, getAll } from './api.js';
import { listen } from './live.js';

const ROW_PX = 34; // fixed row height: what makes the list virtual
const OVERSCAN = 10; // rows rendered beyond the visible ones, each side
const LAST_FIELDS = ['buildid', 'builderid', 'number', 'results', 'complete_at', 'state_string']
  .map((f) => `field=${f}`).join('&');

const PAGE = 1000; // rows per request (the API's default page)

// The last build of each of n builders matching query (lastbuilds pages over builders).
export async function lastBuilds(n, query) {
  const pages = [];
  for (let offset = 0; offset < n; offset += PAGE)
    pages.push(get(`lastbuilds?${query}&limit=${PAGE}&offset=${offset}`, 'builds'));
  return (await Promise.all(pages)).flat();
}

function query() {
  const q = new URLSearchParams(location.search);
  return { tag: q.get('tag') ?? '', name: q.get('name') ?? '' };
}

function setQuery(tag, name) {
  const q = new URLSearchParams();
  if (name) q.set('name', name);
  if (tag) q.set('tag', tag);
  const s = q.toString();
  history.replaceState(null, '', s ? `/builders?${s}` : '/builders');
  dispatchEvent(new PopStateEvent('popstate'));
}

const BUILDERS_Q = 'builders?field=builderid&field=name&field=tags&field=description';

function useBuilders() {
  const [data, setData] = useState({ builders: [], last: new Map(), loaded: false, error: null });
  useEffect(() => {
    let alive = true;
    let builders = null; // the list as last read
    let loading = null;
    let again = false; // false, or 'last' / 'all': what to load once the running load ends
    const load = async (all) => {
      if (loading) {
        again = all || again === 'all' ? 'all' : 'last';
        return;
      }
      loading = (async () => {
        try {
          if (all || !builders) {
            builders = await getAll(BUILDERS_Q, 'builders');
            builders.sort((a, b) => a.name.localeCompare(b.name));
          }
          const last = await lastBuilds(builders.length, `complete=true&${LAST_FIELDS}`);
          if (alive) {
            setData({ builders, last: new Map(last.map((b) => [b.builderid, b])),
              loaded: true, error: null });
          }
        } catch (e) {
          if (alive) setData((d) => ({ ...d, error: e.message }));
        }
      })();
      await loading;
      loading = null;
      if (again) {
        // a refetch asked for while this load ran: events since its
        // requests went out may be missing from it
        const a = again === 'all';
        again = false;
        load(a);
      }
    };
    let subscribed = false;
    const off = listen((k, m) => {
      // the first refetch (/ws subscribed, just after the first load began)
      // rereads the last builds only; later ones (a reconnect: the master
      // may have a new configuration) everything
      if (k === 'refetch') {
        load(subscribed);
        subscribed = true;
      } else if (/^builds\/\d+\/finished$/.test(k) && m) {
        if (builders && !builders.some((b) => b.builderid === m.builderid)) {
          load(true); // a builder this page has not seen: the configuration changed
          return;
        }
        setData((d) => {
          const prev = d.last.get(m.builderid);
          if (prev && prev.number > m.number) return d;
          const last = new Map(d.last);
          last.set(m.builderid, m);
          return { ...d, last };
        });
      }
    });
    load(true);
    return () => {
      alive = false;
      off();
    };
  }, []);
  return data;
}

function Row({ b, last }) {
  const href = `/builders/${encodeURIComponent(b.name)}`;
  return html`<tr data-builder=${b.name} style=${`height:${ROW_PX}px`}>
    <td class="name"><a href=${href}>${b.name}</a></td>
    <td class="tags">${(b.tags ?? []).map((t) =>
      html`<a class="tag" href=${`/builders?tag=${encodeURIComponent(t)}`}>${t}</a> `)}</td>
    <td class="last">${last
      ? html`<${Result} results=${last.results} />${' '}<a title=${when(last.complete_at)}
          data-number=${last.number} href=${`${href}/builds/${last.number}`}>#${last.number}</a>
          <span class="dim">${ago(last.complete_at)}</span>`
      : html`<span class="dim">no builds yet</span>`}</td>
  </tr>`;
}

export function Builders() {
  const data = useBuilders();
  // bench/ui.mjs: the moment the list is shown
  useEffect(() => { if (data.loaded) performance.mark('kiln:data'); }, [data.loaded]);
  const { tag, name } = query();
  const box = useRef(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [, redraw] = useReducer((n) => n + 1, 0);

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    let frame = 0;
    const onScroll = () => {
      if (!frame) frame = requestAnimationFrame(() => {
        frame = 0;
        setTop(el.scrollTop);
      });
    };
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    el.addEventListener('scroll', onScroll, { passive: true });
    return () => {
      el.removeEventListener('scroll', onScroll);
      ro.disconnect();
      cancelAnimationFrame(frame);
    };
  }, [data.loaded]);
  // "5m ago" ages: redrawn each minute while the tab is visible
  useEffect(() => {
    const t = setInterval(() => !document.hidden && redraw(), 60000);
    return () => clearInterval(t);
  }, []);

  const tags = [...new Set(data.builders.flatMap((b) => b.tags ?? []))].sort();
  const needle = name.toLowerCase();
  const shown = data.builders.filter((b) => (!tag || (b.tags ?? []).includes(tag)) &&
    (!needle || b.name.toLowerCase().includes(needle)));
  const first = Math.max(0, Math.floor(top / ROW_PX) - OVERSCAN);
  const last = Math.min(shown.length, Math.ceil((top + height) / ROW_PX) + OVERSCAN);

  return html`<section class="builders-list">
    <h1>Builders</h1>
    ${data.error && html`<p class="error" role="alert">Cannot load: ${data.error}</p>`}
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label>Name <input type="search" name="name" value=${name}
        onInput=${(e) => setQuery(tag, e.currentTarget.value)} /></label>
      <label>Tag <select name="tag" value=${tag} onChange=${(e) => setQuery(e.currentTarget.value, name)}>
        <option value="">any</option>
        ${tags.map((t) => html`<option value=${t}>${t}</option>`)}
      </select></label>
      <span class="dim" data-shown=${shown.length}>${shown.length} of ${data.builders.length}</span>
    </form>
    ${!data.loaded && !data.error ? html`<p class="dim">Loading…</p>` : html`
    <div class="vlist" ref=${box}>
      <table class="builders">
        <thead><tr><th>Builder</th><th>Tags</th><th>Last build</th></tr></thead>
        <tbody>
          ${first > 0 && html`<tr aria-hidden="true" style=${`height:${first * ROW_PX}px`}></tr>`}
          ${shown.slice(first, last).map((b) =>
            html`<${Row} key=${b.builderid} b=${b} last=${data.last.get(b.builderid)} />`)}
          ${last < shown.length &&
            html`<tr aria-hidden="true" style=${`height:${(shown.length - last) * ROW_PX}px`}></tr>`}
        </tbody>
      </table>
    </div>
    ${shown.length === 0 && html`<p class="dim">No builder matches.</p>`}`}
  </section>`;
}
