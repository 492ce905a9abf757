// The REST API (/api/v2): GETs with a time limit, and JSON-RPC calls.
const TIMEOUT_MS = 15000;

export class ApiError extends Error {}

async function request(path, init) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    const r = await fetch(`/api/v2/${path}`, { ...init, signal: ctl.signal });
    const body = await r.json().catch(() => null);
    if (!r.ok) throw new ApiError(body?.error ?? `${r.status} ${r.statusText}`);
    return body;
  } catch (e) {
    throw e instanceof ApiError ? e : new ApiError(`${path}: ${e.message}`);
  } finally {
    clearTimeout(timer);
  }
}

// GET /api/v2/PATH: the list under its resource key (get('builds?complete=false', 'builds'))
export async function get(path, key) {
  const body = await request(path, { headers: { Accept: 'application/json' } });
  if (!Array.isArray(body?.[key])) throw new ApiError(`${path}: no '${key}' list in the answer`);
  return body[key];
}

// Runs fn over items with at most n calls in flight.
export async function eachLimited(items, n, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}
