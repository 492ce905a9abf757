// Shared helpers: htm bound to Preact, Buildbot's result codes, time text.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);

// Buildbot's results (master/buildbot/process/results.py order)
const RESULTS = ['success', 'warnings', 'failure', 'skipped', 'exception', 'retry', 'cancelled'];

export function resultName(r) {
  return RESULTS[r] ?? 'unknown';
}

// "42s", "5m", "3h", "2d": how long ago (or how long) in one short word.
export function span(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function now() {
  return Date.now() / 1000;
}

export function ago(t) {
  return t == null ? '' : `${span(now() - t)} ago`;
}

export function when(t) {
  return t == null ? '' : new Date(t * 1000).toLocaleString();
}

// A badge for a finished build's result.
export function Result({ results }) {
  const n = resultName(results);
  return html`<span class="badge r-${n}" data-result=${n}>${n}</span>`;
}
