// The force forms: /force lists every force scheduler, /force/NAME is its
// form, generated from the scheduler's fields in /api/v2/forceschedulers
// (Buildbot's field list: nested groups, text, int, bool, list, username).
// /force/NAME?builder=B forces only builder B; /force?builder=B lists the
// schedulers that force B, or is the form when only one does (the link for a
// builder page's "Force" button).
// Submitting calls the JSON-RPC "force"; a refused value's message is shown
// next to its field (the error's data, or Buildbot's {"field": "message"}
// object as its message); on success the page goes to the forced builder.
import { useEffect, useState } from 'preact/hooks';
import { html } from './util.js';
import { get } from './api.js';
import { navigate } from './router.js';
import { listen } from './live.js';

const RPC_TIMEOUT_MS = 15000;

// the leaf fields of Buildbot's nested description, in order
function leaves(fields, out = []) {
  for (const f of fields ?? []) {
    if (f.type === 'nested') leaves(f.fields, out);
    else if (f.fullName) out.push(f);
  }
  return out;
}

function initial(f) {
  if (f.type === 'bool') return f.default === true || f.default === 'true';
  if (f.multiple) return Array.isArray(f.default) ? f.default : [];
  return f.default == null ? '' : String(f.default);
}

// the value the force call gets: ints as numbers when they are numbers (else the
// text, which the server refuses with a message naming the field)
function wire(f, v) {
  if (f.type === 'int' && /^-?\d+$/.test(v.trim())) return Number(v);
  return v;
}

// POST /api/v2/forceschedulers/NAME {"method": "force"}: {result} or {error}
async function forceCall(name, params) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), RPC_TIMEOUT_MS);
  try {
    const r = await fetch(`/api/v2/forceschedulers/${encodeURIComponent(name)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'force', params }),
      signal: ctl.signal,
    });
    const body = await r.json().catch(() => null);
    if (body?.error) return { error: body.error };
    if (!r.ok || !Array.isArray(body?.result)) return { error: { message: `${r.status} ${r.statusText}` } };
    return { result: body.result };
  } catch (e) {
    return { error: { message: e.message } };
  } finally {
    clearTimeout(timer);
  }
}

// {"field": "message"} of a refused call, from Kiln's error.data or Buildbot's message object
export function fieldErrors(error) {
  if (error?.data && typeof error.data === 'object') return error.data;
  if (error?.message && typeof error.message === 'object') return error.message;
  return {};
}

function Field({ f, value, set, error }) {
  const id = `f-${f.fullName}`;
  const errId = `${id}-error`;
  const common = { id, name: f.fullName, 'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': error ? errId : undefined, 'aria-required': f.required ? 'true' : undefined };
  let input;
  if (f.type === 'bool') {
    input = html`<input type="checkbox" ...${common} checked=${value}
      onChange=${(e) => set(e.currentTarget.checked)} />`;
  } else if (f.type === 'list') {
    input = html`<select ...${common} multiple=${f.multiple} value=${value}
      onChange=${(e) => set(f.multiple ? [...e.currentTarget.selectedOptions].map((o) => o.value)
        : e.currentTarget.value)}>
      ${(f.choices ?? []).map((c) => html`<option value=${c} selected=${f.multiple ? value.includes(c) : value === c}>${c}</option>`)}
    </select>`;
  } else if (f.type === 'textarea') {
    input = html`<textarea ...${common} rows="4" value=${value} onInput=${(e) => set(e.currentTarget.value)} />`;
  } else {
    const type = f.type === 'int' ? 'number' : 'text';
    input = html`<input type=${type} ...${common} value=${value} size=${f.size || undefined}
      min=${f.minimum} max=${f.maximum} readonly=${f.type === 'fixed'}
      onInput=${(e) => set(e.currentTarget.value)} />`;
  }
  return html`<div class=${error ? 'field bad' : 'field'} data-field=${f.fullName} hidden=${f.hide}>
    <label for=${id}>${f.label || f.name}${f.required ? html`<span class="req" title="required"> *</span>` : ''}</label>
    ${input}
    ${error && html`<span class="field-error" id=${errId} role="alert">${error}</span>`}
  </div>`;
}

function Group({ g, values, set, errors }) {
  const fields = (g.fields ?? []).map((f) => (f.type === 'nested'
    ? html`<${Group} g=${f} values=${values} set=${set} errors=${errors} />`
    : html`<${Field} key=${f.fullName} f=${f} value=${values[f.fullName]}
        set=${(v) => set(f.fullName, v)} error=${errors[f.fullName]} />`));
  return html`<fieldset class="group" style=${`--cols:${g.columns || 1}`}>
    ${g.label && html`<legend>${g.label}</legend>`}${fields}</fieldset>`;
}

function ForceForm({ sched, only }) {
  const fields = leaves(sched.all_fields);
  const [values, setValues] = useState(() => Object.fromEntries(fields.map((f) => [f.fullName, initial(f)])));
  const [builders, setBuilders] = useState(() => (only ? [only] : [...sched.builder_names]));
  const [state, setState] = useState({ busy: false, errors: {}, message: null });
  const set = (k, v) => setValues((s) => ({ ...s, [k]: v }));

  const submit = async (ev) => {
    ev.preventDefault();
    if (state.busy) return;
    if (!builders.length) {
      setState({ busy: false, errors: {}, message: 'Choose at least one builder.' });
      return;
    }
    setState({ busy: true, errors: {}, message: null });
    const params = { builderNames: builders };
    for (const f of fields) params[f.fullName] = wire(f, values[f.fullName]);
    const { result, error } = await forceCall(sched.name, params);
    if (error) {
      const errs = fieldErrors(error);
      const known = new Set(fields.map((f) => f.fullName));
      const placed = Object.fromEntries(Object.entries(errs).filter(([k]) => known.has(k)));
      const rest = Object.entries(errs).filter(([k]) => !known.has(k)).map(([, v]) => v);
      const text = typeof error.message === 'string' ? error.message : rest.join('; ');
      setState({ busy: false, errors: placed, message: Object.keys(placed).length ? null : text });
      return;
    }
    // the forced builder's page shows the request queued, then running, then finished
    const builder = builders[0];
    navigate(`/builders/${encodeURIComponent(builder)}?forced=${result[0]}`);
  };

  return html`<form class="force" onSubmit=${submit} novalidate data-scheduler=${sched.name}>
    ${state.message && html`<p class="error" role="alert">${state.message}</p>`}
    ${sched.all_fields.map((g) => (g.type === 'nested'
      ? html`<${Group} g=${g} values=${values} set=${set} errors=${state.errors} />`
      : html`<${Field} f=${g} value=${values[g.fullName]} set=${(v) => set(g.fullName, v)}
          error=${state.errors[g.fullName]} />`))}
    <fieldset class="group"><legend>Builders</legend>
      ${sched.builder_names.map((b) => html`<label class="check" key=${b}><input type="checkbox"
        name="builder" value=${b} checked=${builders.includes(b)}
        onChange=${(e) => setBuilders((s) => (e.currentTarget.checked ? [...s, b] : s.filter((x) => x !== b)))} />
        ${b}</label>`)}
    </fieldset>
    <p><button type="submit" class="primary" disabled=${state.busy || !sched.enabled}>
      ${state.busy ? 'Starting…' : sched.button_name || sched.name}</button></p>
  </form>`;
}

export function Force({ args: [name] }) {
  const [st, setSt] = useState({ list: null, error: null });
  useEffect(() => listen(() => {}), []); // the header's live/offline state stays true here too
  useEffect(() => {
    let alive = true;
    const path = name ? `forceschedulers/${encodeURIComponent(name)}` : 'forceschedulers';
    get(path, 'forceschedulers').then((list) => alive && setSt({ list, error: null }),
      (e) => alive && setSt({ list: null, error: e.message }));
    return () => {
      alive = false;
    };
  }, [name]);
  const only = new URLSearchParams(location.search).get('builder');
  const { list, error } = st;
  if (error) return html`<section class="force-page"><h1>Force</h1><p class="error" role="alert">${error}</p></section>`;
  if (!list) return html`<section class="force-page"><h1>Force</h1><p class="dim">Loading…</p></section>`;
  // /force?builder=B: the schedulers that force B; the form itself when there is one
  const mine = only ? list.filter((s) => s.builder_names.includes(only)) : list;
  if (!name && mine.length !== 1) {
    const q = only ? `?builder=${encodeURIComponent(only)}` : '';
    return html`<section class="force-page"><h1>Force a build${only ? ` of ${only}` : ''}</h1>
      ${mine.length === 0 && html`<p class="dim">No force scheduler ${only ? `forces ${only}` : 'is configured'}.</p>`}
      <ul class="force-list">${mine.map((s) => html`<li key=${s.name} data-scheduler=${s.name}>
        <a href=${`/force/${encodeURIComponent(s.name)}${q}`}>${s.label || s.name}</a>
        <span class="dim"> ${s.builder_names.join(', ')}</span></li>`)}</ul>
    </section>`;
  }
  const sched = name ? list[0] : mine[0];
  const bad = only && !sched.builder_names.includes(only);
  return html`<section class="force-page"><h1>${sched.label || sched.name}</h1>
    ${bad ? html`<p class="error" role="alert">Builder <code>${only}</code> is not forced by ${sched.name}.</p>`
      : html`<${ForceForm} sched=${sched} only=${only} />`}
    <p><a href="/force">All force schedulers</a></p>
  </section>`;
}
