// A builder's page (/builders/NAME or /builders/ID): its recent builds,
// running ones with their ETA, and its queue; refreshed on its /ws events.
import { useEffect, useState } from 'preact/hooks';
import { html, Result, ago, when, span, now } from './util.js';
import { get } from './api.js';
import { listen } from './live.js';

const RECENT = 25;

export function Builder({ args: [key] }) {
  const [state, setState] = useState({ builder: null, builds: [], queue: [], error: null });

  useEffect(() => {
    let builderid = null;
    let alive = true;
    const load = async () => {
      try {
        const [builder] = await get(`builders/${encodeURIComponent(key)}`, 'builders');
        builderid = builder.builderid;
        const [builds, queue] = await Promise.all([
          get(`builders/${builderid}/builds?order=-number&limit=${RECENT}`, 'builds'),
          get(`builders/${builderid}/buildrequests?claimed=false&complete=false`, 'buildrequests'),
        ]);
        if (alive) setState({ builder, builds, queue, error: null });
      } catch (e) {
        if (alive) setState((s) => ({ ...s, error: e.message }));
      }
    };
    const off = listen((k, m) => {
      if (k === 'refetch' || (m && m.builderid === builderid) || (m && builderid === null)) load();
    });
    load(); // and again once /ws is subscribed (refetch): nothing falls between
    return () => {
      alive = false;
      off();
    };
  }, [key]);

  const { builder, builds, queue, error } = state;
  const t = now();
  return html`<section class="builder">
    <h1>${builder ? builder.name : key}</h1>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${builder?.description && html`<p>${builder.description}</p>`}
    <p class="summary"><span>${queue.length} queued</span></p>
    <table class="builds">
      <thead><tr><th>#</th><th>Result</th><th>Started</th><th>Duration</th><th>Status</th></tr></thead>
      <tbody>${builds.map((b) => html`<tr key=${b.buildid} data-build=${b.number}>
        <td>${b.number}</td>
        <td>${b.complete ? html`<${Result} results=${b.results} />` : html`<span class="badge r-running">running</span>`}</td>
        <td title=${when(b.started_at)}>${ago(b.started_at)}</td>
        <td>${span((b.complete_at ?? t) - b.started_at)}</td>
        <td class="dim">${b.state_string}</td>
      </tr>`)}</tbody>
    </table>
    <p><a href="/">Back to the status board</a></p>
  </section>`;
}
