// The changes (/changes): newest first, 50 a page (?page=N), filtered by
// branch (exact) and author (substring) in the URL; and one change
// (/changes/ID): its files, whole comments, properties, revlink and the
// builds made from it (/api/v2/changes/ID/builds, a Kiln extension).
// Reloaded on /ws changes/* events (the list) and builds/* events (a
// change's builds); nothing polls.
import { useEffect, useState } from 'preact/hooks';
import { html, ago, when, Result } from './util.js';
import { get, getAll } from './api.js';
import { listen, newest } from './live.js';
import { navigate } from './router.js';

const PAGE = 50;
// a build's own events (new, finished), not its steps'
const BUILD_EVENT = /^builds\/\d+\/[a-z_]+$/;
const LIST_FIELDS = ['changeid', 'revision', 'author', 'when_timestamp', 'branch', 'repository', 'comments'];

// data loaded by load(), reloaded when wants(key) says an event concerns it
function useChangesData(load, wants, deps) {
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
      if (k === 'refetch' || wants(k)) run();
    });
    run();
    return () => {
      alive = false;
      off();
    };
  }, deps);
  return state;
}

function changesQuery() {
  const q = new URLSearchParams(location.search);
  const page = Math.max(0, Number.parseInt(q.get('page') ?? '0', 10) || 0);
  return { branch: q.get('branch') ?? '', author: q.get('author') ?? '', page };
}

function changesHref({ branch, author, page }) {
  const q = new URLSearchParams();
  if (branch) q.set('branch', branch);
  if (author) q.set('author', author);
  if (page) q.set('page', String(page));
  const s = q.toString();
  return s ? `/changes?${s}` : '/changes';
}

function firstLine(text) {
  return (text ?? '').split('\n')[0];
}

// Only http(s) links: a revlink is outside input.
function safeUrl(u) {
  return typeof u === 'string' && /^https?:\/\//i.test(u) ? u : null;
}

function ChangesFilter({ q }) {
  const submit = (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.currentTarget);
    navigate(changesHref({ branch: f.get('branch').trim(), author: f.get('author').trim(), page: 0 }));
  };
  return html`<form class="filters" onSubmit=${submit}>
    <label>Branch <input name="branch" defaultValue=${q.branch} /></label>
    <label>Author <input name="author" defaultValue=${q.author} /></label>
    <button type="submit">Filter</button>
    ${(q.branch || q.author) && html`<a href="/changes">all changes</a>`}
  </form>`;
}

export function Changes() {
  const q = changesQuery();
  const key = changesHref(q);
  const { data, error } = useChangesData(async () => {
    const p = new URLSearchParams();
    for (const f of LIST_FIELDS) p.append('field', f);
    p.set('order', '-changeid');
    p.set('limit', String(PAGE + 1)); // one more: is there an older page?
    p.set('offset', String(q.page * PAGE));
    if (q.branch) p.set('branch', q.branch);
    if (q.author) p.set('author__contains', q.author);
    return get(`changes?${p}`, 'changes');
  }, (k) => k.startsWith('changes/'), [key]);

  const rows = (data ?? []).slice(0, PAGE);
  const older = (data ?? []).length > PAGE;
  return html`<section class="changes-view">
    <h1>Changes</h1>
    <${ChangesFilter} key=${key} q=${q} />
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <p class="summary">${data ? `${rows.length} shown${q.page ? ` · page ${q.page + 1}` : ''}` : 'loading'}</p>
    <table class="changes-table">
      <thead><tr><th>Revision</th><th>Author</th><th>When</th><th>Branch</th><th>Repository</th><th>Comments</th></tr></thead>
      <tbody>${rows.map((c) => html`<tr key=${c.changeid} data-change=${c.changeid}>
        <td><a href=${`/changes/${c.changeid}`}><code>${(c.revision ?? `#${c.changeid}`).slice(0, 12)}</code></a></td>
        <td>${c.author}</td>
        <td title=${when(c.when_timestamp)}>${ago(c.when_timestamp)}</td>
        <td>${c.branch && html`<a href=${changesHref({ ...q, branch: c.branch, page: 0 })}>${c.branch}</a>`}</td>
        <td class="dim">${c.repository}</td>
        <td title=${c.comments}>${firstLine(c.comments)}</td>
      </tr>`)}</tbody>
    </table>
    ${data && !rows.length && html`<p class="dim">No changes.</p>`}
    <p class="pager">
      ${q.page > 0 && html`<a href=${changesHref({ ...q, page: q.page - 1 })}>Newer</a>`}
      ${older && html`<a href=${changesHref({ ...q, page: q.page + 1 })}>Older</a>`}
    </p>
  </section>`;
}

function ChangeProps({ props }) {
  const names = Object.keys(props ?? {}).sort();
  if (!names.length) return html`<p class="dim">No properties.</p>`;
  return html`<table class="props">
    <tbody>${names.map((n) => html`<tr key=${n} data-prop=${n}><td>${n}</td>
      <td><code>${JSON.stringify(props[n][0])}</code></td><td class="dim">${props[n][1]}</td></tr>`)}</tbody>
  </table>`;
}

function ChangeBuilds({ builds, names }) {
  if (!builds.length) return html`<p class="dim">No builds yet.</p>`;
  return html`<table class="change-builds">
    <tbody>${builds.map((b) => {
      const name = names.get(b.builderid) ?? String(b.builderid);
      return html`<tr key=${b.buildid} data-build=${b.buildid}>
        <td><a href=${`/builders/${encodeURIComponent(name)}/builds/${b.number}`}>${name} #${b.number}</a></td>
        <td>${b.complete ? html`<${Result} results=${b.results} />` : html`<span class="badge r-running">running</span>`}</td>
        <td class="dim">${b.state_string}</td>
        <td class="dim" title=${when(b.started_at)}>${ago(b.started_at)}</td>
      </tr>`;
    })}</tbody>
  </table>`;
}

export function Change({ args }) {
  const id = args[0];
  const { data, error } = useChangesData(async () => {
    const [changes, builds, builders] = await Promise.all([
      get(`changes/${id}`, 'changes'),
      get(`changes/${id}/builds?order=buildid`, 'builds'),
      getAll('builders?field=builderid&field=name', 'builders'),
    ]);
    return { change: changes[0], builds, names: new Map(builders.map((b) => [b.builderid, b.name])) };
  }, (k) => k.startsWith(`changes/${id}/`) || BUILD_EVENT.test(k), [id]);

  if (error && !data) return html`<p class="error" role="alert">${error}</p>`;
  if (!data) return html`<p class="dim">loading</p>`;
  const { change: c, builds, names } = data;
  const link = safeUrl(c.revlink);
  const rev = c.revision ?? '';
  return html`<section class="change" data-change=${c.changeid}>
    <h1>Change ${c.changeid}: <code>${rev.slice(0, 12)}</code></h1>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <table class="info">
      <tbody>
        <tr><th>Revision</th><td><code>${rev}</code>
          ${link && html` <a class="revlink" href=${link} target="_blank" rel="noopener">view</a>`}</td></tr>
        <tr><th>Author</th><td>${c.author}</td></tr>
        ${c.committer && c.committer !== c.author && html`<tr><th>Committer</th><td>${c.committer}</td></tr>`}
        <tr><th>When</th><td>${when(c.when_timestamp)} <span class="dim">(${ago(c.when_timestamp)})</span></td></tr>
        <tr><th>Branch</th><td>${c.branch && html`<a href=${changesHref({ branch: c.branch })}>${c.branch}</a>`}</td></tr>
        <tr><th>Repository</th><td>${c.repository}</td></tr>
        ${c.project && html`<tr><th>Project</th><td>${c.project}</td></tr>`}
        ${c.codebase && html`<tr><th>Codebase</th><td>${c.codebase}</td></tr>`}
        ${c.category && html`<tr><th>Category</th><td>${c.category}</td></tr>`}
      </tbody>
    </table>
    <h2>Comments</h2>
    <pre class="comments">${c.comments}</pre>
    <h2>Files</h2>
    ${c.files?.length
      ? html`<ul class="files">${c.files.map((f) => html`<li key=${f}><code>${f}</code></li>`)}</ul>`
      : html`<p class="dim">No files.</p>`}
    <h2>Properties</h2>
    <${ChangeProps} props=${c.properties} />
    <h2>Builds</h2>
    <${ChangeBuilds} builds=${builds} names=${names} />
    <p><a href="/changes">All changes</a></p>
  </section>`;
}
