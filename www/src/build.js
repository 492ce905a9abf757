// A build's page (/builders/NAME/builds/N, and /builds/ID for the same
// build): its steps (results, durations, state strings, URLs, logs linked to
// /logs/ID; hidden steps hidden), properties with their sources, changes
// and blamelist, test results (failures first, each failed test with its
// history on the builder), artifacts, the builds it triggered, and rebuild
// and stop buttons.  Live while it runs: build and step events on /ws.
import { useEffect, useRef, useState } from 'preact/hooks';
import { html, Result, ago, when, span, now } from './util.js';
import { get, eachLimited, ApiError } from './api.js';
import { listen } from './live.js';

const FAILED_SHOWN = 200; // failed tests listed per result set (the API pages the rest)

// JSON-RPC on an entity URL (docs/API.md "Control calls"): the result, or throws
export async function call(path, method, params = {}) {
  const r = await fetch(`/api/v2/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = await r.json().catch(() => null);
  if (!r.ok || body?.error) throw new ApiError(body?.error?.message ?? `${r.status} ${r.statusText}`);
  return body.result;
}

const ids = (name, list) => list.map((v) => `${name}=${v}`).join('&');

// Everything the page shows, read over REST.
async function loadBuild(key, number) {
  const [build] = await get(number == null ? `builds/${key}?property=*`
    : `builders/${encodeURIComponent(key)}/builds/${number}?property=*`, 'builds');
  const id = build.buildid;
  const [builder, steps, changes, sets, artifacts, children] = await Promise.all([
    get(`builders/${build.builderid}`, 'builders').then((b) => b[0]),
    get(`builds/${id}/steps`, 'steps'),
    get(`builds/${id}/changes`, 'changes'),
    get(`builds/${id}/test_result_sets`, 'test_result_sets'),
    get(`builds/${id}/artifacts`, 'artifacts'),
    get(`buildsets?parent_buildid=${id}&field=bsid`, 'buildsets'),
  ]);
  const logs = new Map();
  await eachLimited(steps, 6, async (s) => logs.set(s.stepid, await get(`steps/${s.stepid}/logs`, 'logs')));
  const failures = new Map();
  await eachLimited(sets.filter((s) => s.tests_failed > 0), 4, async (s) => failures.set(s.test_result_setid,
    await get(`test_result_sets/${s.test_result_setid}/results?value=0&limit=${FAILED_SHOWN}`, 'test_results')));
  // the build that triggered this one (its buildset's parent_buildid)
  const [req] = await get(`buildrequests/${build.buildrequestid}?field=buildsetid`, 'buildrequests');
  const [bset] = req ? await get(`buildsets/${req.buildsetid}?field=parent_buildid`, 'buildsets') : [];
  const parent = bset?.parent_buildid ?? null;
  // named as everywhere else ("colors #3")
  let parentName = null;
  if (parent != null) {
    const [pb] = await get(`builds/${parent}?field=builderid&field=number`, 'builds');
    const [pbr] = pb ? await get(`builders/${pb.builderid}?field=name`, 'builders') : [];
    if (pbr) parentName = [pbr.name, pb.number];
  }
  let triggered = [];
  if (children.length) {
    const reqs = await get(`buildrequests?${ids('buildsetid', children.map((b) => b.bsid))}`, 'buildrequests');
    if (reqs.length) triggered = await get(`builds?${ids('buildrequestid', reqs.map((r) => r.buildrequestid))}`, 'builds');
    // named as everywhere else ("child #3"): their builders' names, one request
    const bids = [...new Set(triggered.map((b) => b.builderid))];
    if (bids.length) {
      const names = new Map((await get(`builders?${ids('builderid', bids)}&field=builderid&field=name`, 'builders'))
        .map((x) => [x.builderid, x.name]));
      triggered = triggered.map((b) => ({ ...b, builderName: names.get(b.builderid) }));
    }
  }
  return { build, builder, steps, logs, changes, sets, failures, artifacts, triggered, parent, parentName };
}

function Steps({ steps, logs }) {
  const t = now();
  const shown = steps.filter((s) => !s.hidden);
  return html`<ol class="steps">${shown.map((s) => html`<li key=${s.stepid} data-step=${s.name}
      class=${s.complete ? '' : 'active'}>
    ${s.complete ? html`<${Result} results=${s.results} />` : html`<span class="badge r-running">running</span>`}
    <span class="step">${s.name}</span>
    <span class="dim">${s.state_string}</span>
    ${s.started_at != null && html`<span class="dim dur">${span((s.complete_at ?? t) - s.started_at)}</span>`}
    ${(logs.get(s.stepid) ?? []).map((l) => html` <a class="log" href=${`/logs/${l.logid}`}>${l.name}</a>`)}
    ${(s.urls ?? []).map((u) => html` <a class="url" href=${u.url} rel="noopener">${u.name}</a>`)}
  </li>`)}</ol>`;
}

function Properties({ props }) {
  const names = Object.keys(props ?? {}).sort();
  return html`<table class="props"><thead><tr><th>Name</th><th>Value</th><th>Source</th></tr></thead>
    <tbody>${names.map((n) => html`<tr key=${n} data-prop=${n}><td>${n}</td>
      <td><code>${JSON.stringify(props[n][0])}</code></td><td class="dim">${props[n][1]}</td></tr>`)}</tbody>
  </table>`;
}

function Changes({ changes }) {
  if (!changes.length) return html`<p class="dim">No changes.</p>`;
  const blame = [...new Set(changes.map((c) => c.author))];
  return html`<p class="blamelist">Blamelist: ${blame.map((a) => html`<span class="who">${a}</span> `)}</p>
    <ul class="changes">${changes.map((c) => html`<li key=${c.changeid}>
      <a href=${`/changes/${c.changeid}`}><code>${(c.revision ?? '').slice(0, 12) || `change ${c.changeid}`}</code></a> ${c.comments.split('\n')[0]}${' '}
      <span class="dim">${c.author} · ${c.branch ?? ''}</span></li>`)}</ul>`;
}

// One failed test, its history on the builder read when opened.
function FailedTest({ builderid, r }) {
  const [hist, setHist] = useState(null);
  const open = async (e) => {
    if (!e.currentTarget.open || hist) return;
    try {
      const [h] = await get(`builders/${builderid}/test_history?test_name=${encodeURIComponent(r.test_name)}`,
        'test_history');
      setHist(h ?? {});
    } catch (err) {
      setHist({ error: err.message });
    }
  };
  const link = (b) => b && html`<a href=${`/builds/${b.buildid}`}>#${b.number}</a>`;
  return html`<li data-test=${r.test_name}><details onToggle=${open}>
    <summary><span class="badge r-failure">failed</span> <code>${r.test_name}</code>
      ${r.message && html` <span class="dim">${r.message.split('\n')[0]}</span>`}</summary>
    ${!hist ? html`<p class="dim">Loading history…</p>` : hist.error ? html`<p class="error">${hist.error}</p>` :
      html`<p class="history">Failing in ${hist.failing_builds} build(s) since ${link(hist.first_failing_build)};
        last passed in ${link(hist.last_passing_build) ?? 'no build seen'}${hist.flaky ? ' · flaky' : ''}</p>`}
  </details></li>`;
}

function Tests({ build, sets, failures }) {
  if (!sets.length) return html`<p class="dim">No test results.</p>`;
  const ordered = [...sets].sort((a, b) => (b.tests_failed > 0) - (a.tests_failed > 0));
  return html`${ordered.map((s) => html`<div class="testset" key=${s.test_result_setid}
      data-failed=${s.tests_failed}>
    <p><b>${s.description}</b> <span class=${s.tests_failed ? 'bad' : 'dim'}>${s.tests_failed} failed</span>,${' '}
      ${s.tests_passed} passed, ${s.tests_skipped ?? 0} skipped</p>
    <ul class="failed">${(failures.get(s.test_result_setid) ?? []).map((r) =>
      html`<${FailedTest} key=${r.test_resultid} builderid=${build.builderid} r=${r} />`)}</ul>
  </div>`)}`;
}

function Artifacts({ artifacts }) {
  if (!artifacts.length) return html`<p class="dim">No artifacts.</p>`;
  return html`<ul class="artifacts">${artifacts.map((a) => html`<li key=${a.artifactid} data-artifact=${a.name}>
    <a href=${`/api/v2/artifacts/${a.artifactid}/download`} download>${a.name}</a>
    <span class="dim">${a.size} bytes · sha256 ${a.sha256.slice(0, 12)}…</span></li>`)}</ul>`;
}

function Triggered({ builds }) {
  if (!builds.length) return null;
  return html`<h2>Triggered builds</h2><ul class="triggered">${builds.map((b) => html`<li key=${b.buildid}
      data-triggered=${b.buildid}>
    ${b.complete ? html`<${Result} results=${b.results} />` : html`<span class="badge r-running">running</span>`}
    <a href=${b.builderName ? `/builders/${encodeURIComponent(b.builderName)}/builds/${b.number}` : `/builds/${b.buildid}`}>${
      b.builderName ? `${b.builderName} #${b.number}` : `build ${b.buildid}`}</a> <span class="dim">${b.state_string}</span></li>`)}</ul>`;
}

export function Build({ args: [key, number] }) {
  const [st, setSt] = useState({ data: null, error: null, note: null });
  const rebuilt = useRef(null); // the request a rebuild made: its build is shown as it runs

  useEffect(() => {
    let alive = true;
    let buildid = null;
    let again = false;
    let loading = null;
    let watchOthers = false; // other builds' events matter (it may trigger, or wait for some)
    const load = async () => {
      if (loading) {
        again = true;
        return;
      }
      loading = loadBuild(key, number);
      try {
        const data = await loading;
        buildid = data.build.buildid;
        watchOthers = !data.build.complete || data.triggered.some((t) => !t.complete);
        if (alive) setSt((s) => ({ ...s, data, error: null }));
      } catch (e) {
        if (alive) setSt((s) => ({ ...s, error: e.message }));
      }
      loading = null;
      if (again) {
        again = false;
        load();
      }
    };
    // a step event: that step replaced in place, its logs (re)read
    const stepEvent = async (m, verb) => {
      setSt((s) => {
        if (!s.data) return s;
        const steps = s.data.steps.filter((x) => x.stepid !== m.stepid).concat([m])
          .sort((a, b) => a.number - b.number);
        return { ...s, data: { ...s.data, steps } };
      });
      if (verb === 'updated') return; // state string, progress: no new log (slice "board")
      try {
        const logs = await get(`steps/${m.stepid}/logs`, 'logs');
        if (alive) {
          setSt((s) => s.data ? { ...s, data: { ...s.data, logs: new Map(s.data.logs).set(m.stepid, logs) } } : s);
        }
      } catch {
        // shown without its logs until the next load
      }
    };
    const off = listen((k, m) => {
      if (k === 'refetch') {
        load();
        return;
      }
      const p = k.split('/');
      if (p[0] !== 'builds' || !m) return;
      if (p.length === 3 && m.buildrequestid === rebuilt.current) {
        setSt((s) => ({ ...s, note: { ...s.note, build: m } }));
      }
      if (Number(p[1]) === buildid) {
        if (p[2] === 'steps') stepEvent(m, p[4]);
        else load(); // new, finished: results, tests, artifacts, properties
      } else if (p.length === 3 && watchOthers) {
        load(); // a build it triggered may have started or ended
      }
    });
    load();
    return () => {
      alive = false;
      off();
    };
  }, [key, number]);

  // durations of running steps tick, only while the build runs and the tab is visible
  const running = st.data != null && !st.data.build.complete;
  useEffect(() => {
    if (!running) return undefined;
    const tick = setInterval(() => !document.hidden && setSt((s) => ({ ...s })), 1000);
    return () => clearInterval(tick);
  }, [running]);

  useEffect(() => { if (st.data) performance.mark('kiln:data'); }, [st.data?.build.buildid]); // bench/ui.mjs
  const { data, error, note } = st;
  if (!data) {
    return html`<section class="build"><h1>Build</h1>
      ${error ? html`<p class="error" role="alert">${error}</p>` : html`<p class="dim">Loading…</p>`}</section>`;
  }
  const { build: b, builder } = data;
  const act = async (method, what) => {
    try {
      const res = await call(`builds/${b.buildid}`, method, method === 'stop' ? { reason: 'stopped from the web UI' } : {});
      if (method === 'rebuild') rebuilt.current = Object.values(res?.[1] ?? {})[0] ?? null;
      setSt((s) => ({ ...s, note: method === 'rebuild' ? { bsid: res?.[0] } : { text: `${what} asked` } }));
      if (method === 'rebuild' && rebuilt.current) {
        // its build may have started (even ended) before this answer came: read it once
        const [nb] = await get(`builds?buildrequestid=${rebuilt.current}&order=-buildid&limit=1`, 'builds');
        if (nb) setSt((s) => (s.note?.build?.complete ? s : { ...s, note: { ...s.note, build: nb } }));
      }
    } catch (e) {
      setSt((s) => ({ ...s, note: { text: `${what} failed: ${e.message}`, bad: true } }));
    }
  };
  const t = now();
  const bhref = `/builders/${encodeURIComponent(builder.name)}`;
  return html`<section class="build" data-buildid=${b.buildid}>
    <h1><a href=${bhref}>${builder.name}</a> #${b.number}${' '}
      ${b.complete ? html`<${Result} results=${b.results} />` : html`<span class="badge r-running" data-live="yes">running</span>`}</h1>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${data.parent && html`<p class="parent">Triggered by <a href=${data.parentName
      ? `/builders/${encodeURIComponent(data.parentName[0])}/builds/${data.parentName[1]}` : `/builds/${data.parent}`}
      data-parent=${data.parent}>${data.parentName ? `${data.parentName[0]} #${data.parentName[1]}` : `build ${data.parent}`}</a></p>`}
    <p class="summary"><span>${b.state_string}</span>
      <span title=${when(b.started_at)}>started ${ago(b.started_at)}</span>
      <span>took ${span((b.complete_at ?? t) - b.started_at)}</span></p>
    <p class="actions">
      <button type="button" class="rebuild" onClick=${() => act('rebuild', 'Rebuild')}>Rebuild</button>
      ${!b.complete && html`<button type="button" class="stop" onClick=${() => act('stop', 'Stop')}>Stop</button>`}
      ${note && (note.bsid ? html`<span class="note" data-rebuilt=${note.bsid}>${!note.build
          ? `Rebuild queued (buildset ${note.bsid})`
          : html`Rebuild: <a href=${`${bhref}/builds/${note.build.number}`}>#${note.build.number}</a> ${note.build.complete
            ? html`<${Result} results=${note.build.results} />`
            : html`<span class="badge r-running" data-rebuild-running="yes">running</span>`}`}</span>`
        : html`<span class=${note.bad ? 'error' : 'note'}>${note.text}</span>`)}
    </p>
    <h2>Steps</h2><${Steps} steps=${data.steps} logs=${data.logs} />
    <${Triggered} builds=${data.triggered} />
    <h2>Tests</h2><${Tests} build=${b} sets=${data.sets} failures=${data.failures} />
    <h2>Artifacts</h2><${Artifacts} artifacts=${data.artifacts} />
    <h2>Changes</h2><${Changes} changes=${data.changes} />
    <h2>Properties</h2><${Properties} props=${b.properties} />
  </section>`;
}
