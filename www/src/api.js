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
const ALL_PAGE = 1000; // rows per request (the API's default page)

// Every row of a collection: the API answers a page at a time.  One row
// more than a page is asked for, so a collection of exactly N pages ends
// without a request for an empty page after it (1,000 builders: one request).
export async function getAll(path, key) {
  const sep = path.includes('?') ? '&' : '?';
  const all = [];
  for (let offset = 0; ; offset += ALL_PAGE) {
    const rows = await get(`${path}${sep}limit=${ALL_PAGE + 1}&offset=${offset}`, key);
    all.push(...rows.slice(0, ALL_PAGE));
    if (rows.length <= ALL_PAGE) return all;
  }
}

export async function eachLimited(items, n, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}
