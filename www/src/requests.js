// Pending build requests (/requests): every unclaimed, incomplete request,
// oldest first within priority as the queue runs them, with its builder,
// age, priority, the estimated start the API computes, and a Cancel button
// (JSON-RPC "cancel" on /api/v2/buildrequests/ID).  Refreshed on /ws
// buildrequests/* events; a deep link may filter by builder (?builder=ID).
import { useEffect, useState } from 'preact/hooks';
import { html, ago, when, span, now } from './util.js';
import { get, getAll } from './api.js';
import { listen, newest } from './live.js';

async function requestsCancel(brid) {
  const r = await fetch(`/api/v2/buildrequests/${brid}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'cancel', params: { reason: 'cancelled from the UI' } }),
  });
  const body = await r.json().catch(() => null);
  if (!r.ok || body?.error) throw new Error(body?.error?.message ?? `${r.status} ${r.statusText}`);
}

function CancelButton({ brid }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const click = async () => {
    setBusy(true);
    setError(null);
    try {
      await requestsCancel(brid);
    } catch (e) {
      setError(e.message);
      setBusy(false);
    }
  };
  return html`<button type="button" class="cancel" disabled=${busy} onClick=${click}
    aria-label=${`cancel request ${brid}`}>Cancel</button>
    ${error && html` <span class="error" role="alert">${error}</span>`}`;
}

export function Requests() {
  const builder = new URLSearchParams(location.search).get('builder');
  const [state, setState] = useState({ reqs: null, names: new Map(), error: null });
  useEffect(() => {
    let alive = true;
    const take = newest();
    const load = async () => {
      const current = take();
      try {
        const filter = builder && /^\d+$/.test(builder) ? `&builderid=${builder}` : '';
        const [reqs, builders] = await Promise.all([
          get(`buildrequests?claimed=false&complete=false&order=-priority&order=submitted_at${filter}`, 'buildrequests'),
          getAll('builders?field=builderid&field=name', 'builders'),
        ]);
        if (alive && current()) setState({ reqs, names: new Map(builders.map((b) => [b.builderid, b.name])), error: null });
      } catch (e) {
        if (alive && current()) setState((s) => ({ ...s, error: e.message }));
      }
    };
    const off = listen((k) => {
      if (k === 'refetch' || k.startsWith('buildrequests/')) load();
    });
    load();
    return () => {
      alive = false;
      off();
    };
  }, [builder]);

  const { reqs, names, error } = state;
  const t = now();
  return html`<section class="requests">
    <h1>Pending build requests</h1>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <p class="summary">${reqs ? `${reqs.length} waiting` : 'loading'}
      ${builder && html` · <a href="/requests">all builders</a>`}</p>
    <table class="requests-table">
      <thead><tr><th>#</th><th>Builder</th><th>Waiting</th><th>Priority</th><th>Expected start</th><th></th></tr></thead>
      <tbody>${(reqs ?? []).map((r) => html`<tr key=${r.buildrequestid} data-request=${r.buildrequestid}>
        <td>${r.buildrequestid}</td>
        <td><a href=${`/builders/${r.builderid}`}>${names.get(r.builderid) ?? r.builderid}</a></td>
        <td title=${when(r.submitted_at)}>${ago(r.submitted_at)}</td>
        <td>${r.priority}</td>
        <td class="dim">${r.estimated_start == null ? 'unknown' : r.estimated_start <= t ? 'now' : `in ${span(r.estimated_start - t)}`}</td>
        <td><${CancelButton} brid=${r.buildrequestid} /></td>
      </tr>`)}</tbody>
    </table>
  </section>`;
}
