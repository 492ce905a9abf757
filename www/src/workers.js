// The workers (/workers) and one worker (/workers/NAME): connected or not,
// paused, its info (os, version, admin, host from the worker), its current builds, when the
// master last heard from it, and pause / unpause, "Stop gracefully" and "Kill" buttons
// (JSON-RPC on /api/v2/workers/ID; Kill asks first).  Refreshed on /ws workers/* and
// builds/* events.
import { useEffect, useState } from 'preact/hooks';
import { html, ago, when } from './util.js';
import { get, getAll } from './api.js';
import { listen, newest } from './live.js';

const RECENT = 25;

// POST a JSON-RPC call; throws with the server's message on an error
async function workersRpc(path, method) {
  const r = await fetch(`/api/v2/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: {} }),
  });
  const body = await r.json().catch(() => null);
  if (!r.ok || body?.error) throw new Error(body?.error?.message ?? `${r.status} ${r.statusText}`);
}

// data loaded by load(), reloaded on the events that can change it
function useWorkersData(load) {
  const [state, setState] = useState({ data: null, error: null });
  useEffect(() => {
    let alive = true;
    const take = newest();
    const run = async () => {
      const current = take();
      try {
        const data = await load();
        if (alive && current()) setState({ data, error: null });
      } catch (e) {
        if (alive && current()) setState((s) => ({ ...s, error: e.message }));
      }
    };
    const off = listen((k) => {
      if (k === 'refetch' || k.startsWith('workers/') || k.startsWith('builds/')) run();
    });
    run();
    return () => {
      alive = false;
      off();
    };
  }, [load]);
  return state;
}

function workersPlural(n, what) {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

// running: the worker's running builds (a graceful stop waits for them)
function workersState(w, running = 0) {
  if (w.connected_to.length === 0) return html`<span class="badge r-offline" data-state="offline">offline</span>`;
  if (w.graceful) {
    return html`<span class="badge r-paused" data-state="stopping">${running
      ? `stopping: finishing ${workersPlural(running, 'build')}` : 'stopping'}</span>`;
  }
  if (w.paused) return html`<span class="badge r-paused" data-state="paused">paused</span>`;
  return html`<span class="badge r-success" data-state="connected">connected</span>`;
}

// A worker the master starts itself (Kiln's latent_kind / latent_state, issue 14): its
// state beside the connection's, the last failed start's reason as the title
function LatentState({ w }) {
  if (!w.latent_state) return null;
  const cls = w.latent_state === 'failed' ? 'r-failure' : 'r-offline';
  return html` <span class="badge ${cls}" data-latent=${w.latent_state}
    title=${w.latent_error ?? `${w.latent_kind} worker started by the master`}>${w.latent_kind} ${w.latent_state}</span>`;
}

function LastSeen({ w }) {
  if (w.last_seen == null) return html`<span class="dim" data-seen="never">never</span>`;
  if (w.connected_to.length) return html`<span title=${when(w.last_seen)} data-seen="now">now</span>`;
  return html`<span title=${when(w.last_seen)} data-seen=${w.last_seen}>${ago(w.last_seen)}</span>`;
}

function PauseButton({ w }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const click = async () => {
    setBusy(true);
    setError(null);
    try {
      await workersRpc(`workers/${w.workerid}`, w.paused ? 'unpause' : 'pause');
    } catch (e) {
      setError(e.message);
    }
    setBusy(false);
  };
  return html`<button type="button" class="pause" disabled=${busy} onClick=${click}
    aria-label=${`${w.paused ? 'unpause' : 'pause'} ${w.name}`}>${w.paused ? 'Unpause' : 'Pause'}</button>
    ${error && html` <span class="error" role="alert">${error}</span>`}`;
}

// "Stop gracefully" (Buildbot's stop: running builds finish, nothing new
// starts, then the worker is shut down) and "Kill" (shut down now: running
// builds end RETRY), which asks first.  Only for a connected worker.
function StopKill({ w }) {
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState(null);
  if (w.connected_to.length === 0) return null;
  const call = async (method) => {
    setBusy(true);
    setError(null);
    setConfirming(false);
    try {
      await workersRpc(`workers/${w.workerid}`, method);
    } catch (e) {
      setError(e.message);
    }
    setBusy(false);
  };
  return html`<span class="workerctl">
    ${!w.graceful && html` <button type="button" class="stop" disabled=${busy}
      onClick=${() => call('stop')} aria-label=${`stop ${w.name} gracefully`}
      title="finish the running builds, start no new one, then shut the worker down">Stop gracefully</button>`}
    ${confirming
      ? html` <span class="confirm" role="group" aria-label=${`confirm kill ${w.name}`}>Kill ${w.name} now? Its running builds end (retry).
        <button type="button" class="kill-yes" disabled=${busy} onClick=${() => call('kill')}
          aria-label=${`yes, kill ${w.name}`}>Kill now</button>
        <button type="button" class="kill-no" onClick=${() => setConfirming(false)}>Cancel</button></span>`
      : html` <button type="button" class="kill" disabled=${busy} onClick=${() => setConfirming(true)}
          aria-label=${`kill ${w.name}`} title="disconnect the worker now">Kill</button>`}
    ${error && html` <span class="error" role="alert">${error}</span>`}</span>`;
}

function BuildLinks({ builds }) {
  if (!builds.length) return html`<span class="dim">idle</span>`;
  return builds.map((b) => html`<a class="wbuild" href=${`/builders/${b.builderid}`}
    title=${b.state_string}>${b.buildername ?? `builder ${b.builderid}`} #${b.number}</a> `);
}

async function workersLoadAll() {
  const [workers, running, builders] = await Promise.all([
    get('workers', 'workers'),
    get('builds?complete=false', 'builds'),
    getAll('builders?field=builderid&field=name', 'builders'),
  ]);
  const names = new Map(builders.map((b) => [b.builderid, b.name]));
  const byWorker = new Map();
  for (const b of running) {
    b.buildername = names.get(b.builderid);
    if (!byWorker.has(b.workerid)) byWorker.set(b.workerid, []);
    byWorker.get(b.workerid).push(b);
  }
  workers.sort((a, b) => a.name.localeCompare(b.name));
  return { workers, byWorker };
}

export function Workers() {
  const { data, error } = useWorkersData(workersLoadAll);
  const workers = data?.workers ?? [];
  const online = workers.filter((w) => w.connected_to.length).length;
  return html`<section class="workers">
    <h1>Workers</h1>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <p class="summary">${data ? `${online} of ${workers.length} connected` : 'loading'}</p>
    <table class="workers-table">
      <thead><tr><th>Worker</th><th>State</th><th>Last seen</th><th>System</th><th>Builds</th><th></th></tr></thead>
      <tbody>${workers.map((w) => html`<tr key=${w.workerid} data-worker=${w.name}>
        <td><a href=${`/workers/${encodeURIComponent(w.name)}`}>${w.name}</a></td>
        <td>${workersState(w, data.byWorker.get(w.workerid)?.length ?? 0)}<${LatentState} w=${w} /></td>
        <td><${LastSeen} w=${w} /></td>
        <td class="dim">${[w.workerinfo?.os_pretty_name ?? w.workerinfo?.system, w.workerinfo?.version].filter(Boolean).join(' · ')}</td>
        <td><${BuildLinks} builds=${data.byWorker.get(w.workerid) ?? []} /></td>
        <td><${PauseButton} w=${w} /><${StopKill} w=${w} /></td>
      </tr>`)}</tbody>
    </table>
  </section>`;
}

const INFO_KEYS = ['version', 'os_pretty_name', 'system', 'arch', 'numcpus', 'host', 'admin', 'basedir'];

export function Worker({ args: [key] }) {
  const [load] = useState(() => async () => {
    const [w] = await get(`workers/${encodeURIComponent(key)}`, 'workers');
    const [builds, builders] = await Promise.all([
      get(`workers/${w.workerid}/builds?order=-buildid&limit=${RECENT}`, 'builds'),
      getAll('builders?field=builderid&field=name', 'builders'),
    ]);
    const names = new Map(builders.map((b) => [b.builderid, b.name]));
    for (const b of builds) b.buildername = names.get(b.builderid);
    return { w, builds };
  });
  const { data, error } = useWorkersData(load);
  const w = data?.w;
  return html`<section class="worker">
    <h1>${w ? w.name : key}</h1>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${w && html`<p class="summary">${workersState(w, data.builds.filter((b) => !b.complete).length)} last seen <${LastSeen} w=${w} /> <${PauseButton} w=${w} /><${StopKill} w=${w} /></p>
    <table class="info"><tbody>${INFO_KEYS.filter((k) => w.workerinfo?.[k] != null).map((k) => html`
      <tr key=${k} data-info=${k}><th>${k}</th><td>${String(w.workerinfo[k])}</td></tr>`)}</tbody></table>
    <h2>Current builds</h2>
    <p><${BuildLinks} builds=${data.builds.filter((b) => !b.complete)} /></p>
    <h2>Recent builds</h2>
    <ul class="recent">${data.builds.filter((b) => b.complete).map((b) => html`<li key=${b.buildid}>
      <a href=${`/builders/${b.builderid}`}>${b.buildername} #${b.number}</a>
      <span class="dim"> ${b.state_string} · ${ago(b.complete_at)}</span></li>`)}</ul>`}
    <p><a href="/workers">All workers</a></p>
  </section>`;
}
