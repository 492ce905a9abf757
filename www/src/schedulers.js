// The schedulers (/schedulers): each configured scheduler with its kind,
// its builders and whether it is enabled, with a button that calls the
// JSON-RPC "enable" on /api/v2/schedulers/ID (a disabled scheduler makes no
// buildset; docs/API.md).  Schedulers send no /ws events: the list is read
// on load, after each call, and on a refetch.
import { useEffect, useState } from 'preact/hooks';
import { html } from './util.js';
import { get } from './api.js';
import { listen, newest } from './live.js';

async function schedulersEnable(id, enabled) {
  const r = await fetch(`/api/v2/schedulers/${id}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'enable', params: { enabled } }),
  });
  const body = await r.json().catch(() => null);
  if (!r.ok || body?.error) throw new Error(body?.error?.message ?? `${r.status} ${r.statusText}`);
}

function EnableButton({ s, reload }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const click = async () => {
    setBusy(true);
    setError(null);
    try {
      await schedulersEnable(s.schedulerid, !s.enabled);
      await reload();
    } catch (e) {
      setError(e.message);
    }
    setBusy(false);
  };
  const label = s.enabled ? 'Disable' : 'Enable';
  return html`<button type="button" class="enable" disabled=${busy} onClick=${click}
    aria-label=${`${label.toLowerCase()} ${s.name}`}>${label}</button>
    ${error && html` <span class="error" role="alert">${error}</span>`}`;
}

export function Schedulers() {
  const [state, setState] = useState({ list: null, error: null });
  const [take] = useState(newest);
  const load = async () => {
    const current = take();
    try {
      const list = await get('schedulers', 'schedulers');
      if (current()) setState({ list, error: null });
    } catch (e) {
      if (current()) setState((s) => ({ ...s, error: e.message }));
    }
  };
  useEffect(() => listen((k) => {
    if (k === 'refetch') load();
  }), []);
  useEffect(() => {
    load();
  }, []);

  const { list, error } = state;
  return html`<section class="schedulers">
    <h1>Schedulers</h1>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <p class="summary">${list ? `${list.length} schedulers, ${list.filter((s) => !s.enabled).length} disabled` : 'loading'}</p>
    <table class="schedulers-table">
      <thead><tr><th>Name</th><th>Kind</th><th>Builders</th><th>Enabled</th><th></th></tr></thead>
      <tbody>${(list ?? []).map((s) => html`<tr key=${s.schedulerid} data-scheduler=${s.name}
          class=${s.enabled ? '' : 'disabled'}>
        <td>${s.kind === 'force_scheduler' ? html`<a href=${`/force/${encodeURIComponent(s.name)}`}>${s.name}</a>` : s.name}</td>
        <td class="dim">${s.kind}</td>
        <td>${s.builder_names.map((b) => html`<a class="sbuilder" href=${`/builders/${encodeURIComponent(b)}`}>${b}</a> `)}</td>
        <td data-enabled=${s.enabled ? 'yes' : 'no'}>${s.enabled ? 'yes' : 'no'}</td>
        <td><${EnableButton} s=${s} reload=${load} /></td>
      </tr>`)}</tbody>
    </table>
  </section>`;
}
