// A builder's page (/builders/NAME or /builders/ID): its builds, paged
// (?page=N in the URL), its queue with a cancel button per request, its
// workers, and charts of its recorded numbers over its builds (chart.js,
// loaded only here).  Refreshed on its /ws events.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html, Result, ago, when, span, now } from './util.js';
import { get, eachLimited } from './api.js';
import { listen } from './live.js';
import { subscribed } from './catchup.js';
import { call } from './build.js';
import { navigate } from './router.js';
import { WatchToggle } from './notify.js'; // slice "notify"

const RECENT = 25; // builds per page
const CHARTS_MAX = 12; // series charted (the rest are listed by name)
const POINTS = 200; // newest values per chart

function page() {
  const p = Number(new URLSearchParams(location.search).get('page'));
  return Number.isInteger(p) && p > 0 ? p : 0;
}

// the builder at once, its builds, queue and workers once `sub` resolves (/ws subscribed)
async function loadBuilder(key, pg, sub) {
  const [[builder]] = await Promise.all([get(`builders/${encodeURIComponent(key)}`, 'builders'), sub]);
  const id = builder.builderid;
  const [builds, queue, workers] = await Promise.all([
    get(`builders/${id}/builds?order=-number&limit=${RECENT + 1}&offset=${pg * RECENT}`, 'builds'),
    get(`builders/${id}/buildrequests?claimed=false&complete=false`, 'buildrequests'),
    get(`builders/${id}/workers?field=workerid&field=name&field=connected_to&field=paused`, 'workers'),
  ]);
  return { builder, builds: builds.slice(0, RECENT), more: builds.length > RECENT, queue, workers };
}

// One chart per recorded number; uPlot comes in with chart.js on first use.
function Charts({ builder, version }) {
  const box = useRef(null);
  const [state, setState] = useState({ names: [], error: null });
  // uPlot paints with the theme's colours: drawn again when the header's button changes it
  const [theme, setTheme] = useState(0);
  useEffect(() => {
    const f = () => setTheme((n) => n + 1);
    addEventListener('kiln-theme', f);
    return () => removeEventListener('kiln-theme', f);
  }, []);
  useEffect(() => {
    let alive = true;
    const undo = [];
    (async () => {
      try {
        // the build's duration, warnings and test counts before the per-step durations: a
        // builder with many steps must not push them past CHARTS_MAX
        const rank = (n) => (n === 'build_duration' ? 0 : /^(warnings|tests_)/.test(n) ? 1 : /^step_duration:/.test(n) ? 3 : 2);
        const names = (await get(`builders/${builder.builderid}/numbers`, 'numbers')).map((n) => n.name)
          .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
        if (!alive) return;
        setState({ names, error: null });
        if (!names.length) return;
        const [{ drawChart }, series] = await Promise.all([
          import('./chart.js'),
          (async () => {
            const out = new Map();
            await eachLimited(names.slice(0, CHARTS_MAX), 4, async (n) => out.set(n,
              await get(`builders/${builder.builderid}/numbers/${encodeURIComponent(n)}?order=-number&limit=${POINTS}`,
                'numbers')));
            return out;
          })(),
        ]);
        if (!alive || !box.current) return;
        for (const [n, vals] of series) {
          const el = box.current.querySelector(`[data-chart="${CSS.escape(n)}"]`);
          if (!el) continue;
          const points = vals.slice().reverse().map((v) => ({ x: v.number, y: v.value, label: `#${v.number}`,
            href: `/builders/${encodeURIComponent(builder.name)}/builds/${v.number}` }));
          undo.push(drawChart(el, { title: n, unit: /duration/.test(n) ? 's' : '', points, navigate }));
        }
      } catch (e) {
        if (alive) setState((s) => ({ ...s, error: e.message }));
      }
    })();
    return () => {
      alive = false;
      undo.forEach((f) => f());
    };
  }, [builder.builderid, version, theme]);
  if (!state.names.length && !state.error) return null;
  return html`<h2>Numbers</h2>
    ${state.error && html`<p class="error">${state.error}</p>`}
    <div class="charts" ref=${box}>${state.names.slice(0, CHARTS_MAX).map((n) =>
      html`<figure class="chart" key=${n} data-chart=${n}><p class="dim">${n}…</p></figure>`)}</div>
    ${state.names.length > CHARTS_MAX && html`<p class="dim">Not charted: ${state.names.slice(CHARTS_MAX).join(', ')}</p>`}`;
}

export function Builder({ args: [key] }) {
  const pg = page();
  const [state, setState] = useState({ builder: null, builds: [], queue: [], workers: [], more: false,
    error: null, version: 0 });

  useEffect(() => {
    let builderid = null;
    let alive = true;
    // loaded once, in parallel with the /ws connect: the builder at once,
    // what events change once /ws is subscribed (catchup.js); the first
    // "refetch" only lets that load go on, later ones (reconnects, resyncs)
    // reload
    const gate = subscribed();
    const load = async (finished) => {
      try {
        const d = await loadBuilder(key, pg, gate.wait);
        builderid = d.builder.builderid;
        if (alive) setState((s) => ({ ...d, error: null, version: s.version + (finished ? 1 : 0) }));
      } catch (e) {
        if (alive) setState((s) => ({ ...s, error: e.message }));
      }
    };
    const off = listen((k, m) => {
      if (k === 'refetch') {
        if (!gate.takeAck()) load(true);
      } else if (m && (m.builderid === builderid || builderid === null) && !/\/steps\//.test(k))
        load(/^builds\/\d+\/finished$/.test(k));
    });
    load(false);
    return () => {
      alive = false;
      gate.close();
      off();
    };
  }, [key, pg]);

  useEffect(() => { if (state.builder) performance.mark('kiln:data'); }, [state.builder]); // bench/ui.mjs
  const { builder, builds, queue, workers, more, error, version } = state;
  const t = now();
  const base = builder ? `/builders/${encodeURIComponent(builder.name)}` : '';
  const cancel = async (brid) => {
    try {
      await call(`buildrequests/${brid}`, 'cancel', { reason: 'cancelled from the web UI' });
    } catch (e) {
      setState((s) => ({ ...s, error: `cancel: ${e.message}` }));
    }
  };
  return html`<section class="builder">
    <h1>${builder ? builder.name : key}</h1>
    ${builder && html`<p class="actions"><${WatchToggle} builder=${builder} /></p>`}
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${builder?.description && html`<p>${builder.description}</p>`}
    <p class="summary"><span data-queued=${queue.length}>${queue.length} queued</span>
      <span>workers: ${workers.map((w) => html`<span class=${w.connected_to?.length ? 'worker' : 'worker bad'}
        data-worker=${w.name}>${w.name}${w.connected_to?.length ? '' : ' (offline)'}</span> `)}</span></p>
    ${queue.length > 0 && html`<h2>Queue</h2><ul class="queue">${queue.map((r) => html`<li key=${r.buildrequestid}
        data-request=${r.buildrequestid}>request ${r.buildrequestid} <span class="dim">${ago(r.submitted_at)}</span>
      <button type="button" class="cancel" onClick=${() => cancel(r.buildrequestid)}>Cancel</button></li>`)}</ul>`}
    <h2>Builds</h2>
    <table class="builds">
      <thead><tr><th>#</th><th>Result</th><th>Started</th><th>Duration</th><th>Status</th></tr></thead>
      <tbody>${builds.map((b) => html`<tr key=${b.buildid} data-build=${b.number}>
        <td><a href=${`${base}/builds/${b.number}`}>${b.number}</a></td>
        <td>${b.complete ? html`<${Result} results=${b.results} />` : html`<span class="badge r-running">running</span>`}</td>
        <td title=${when(b.started_at)}>${ago(b.started_at)}</td>
        <td>${span((b.complete_at ?? t) - b.started_at)}</td>
        <td class="dim">${b.state_string}</td>
      </tr>`)}</tbody>
    </table>
    <p class="pager">${pg > 0 && html`<a href=${pg > 1 ? `${base}?page=${pg - 1}` : base}>Newer</a> `}
      ${more && html`<a href=${`${base}?page=${pg + 1}`} data-next="yes">Older</a>`}</p>
    ${builder && html`<${Charts} builder=${builder} version=${version} />`}
    <p><a href="/">Back to the status board</a></p>
  </section>`;
}
