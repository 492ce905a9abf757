// The pieces shared by the browser tests of tests/e2e/ui/ (run by the
// shell's ui_run / ui_start of tests/e2e/lib-ui.sh, which relays their
// output as test points).  A test prints "ok - ..." / "not ok - ..." lines
// and "# ..." diagnostics; every wait is bounded.
//
// Environment: URL (the master), TRASH (the test's directory: gates,
// screenshots), WWW (www/, for playwright-core), CHROMIUM (the browser).
//
//   BASE, TRASH            from the environment (URL is BASE)
//   T                      one UI step's bound, for playwright waits
//   ok(cond, desc)         one test point
//   step(desc, fn)         one test point: fn (async) ends without throwing
//                          (a timeout is a failure; its message a "# " line)
//   expect(cond, what)     throws what unless cond (inside a step)
//   failed                 how many points failed so far
//   deadline(seconds)      a hard stop: "not ok" and exit even if the
//                          browser hangs (the shell's own guard is longer)
//   httpJson(method, path, body)
//                          an API call on a connection of its own
//                          (agent: false: a kept-alive socket the master
//                          closed as idle is never reused), bounded (10 s);
//                          resolves { status, json }
//   api(path)              GET /api/v2/PATH's JSON (an error unless 2xx)
//   force(builder)         forces BUILDER (JSON-RPC, reason "ui test"),
//                          resolves the build request id
//   launch(viewport, ignore)
//                          starts Chromium with one page; resolves
//                          { browser, page, errors }: errors collects the
//                          page's console errors (unless they match the
//                          regexp ignore) and uncaught exceptions
//   run(browser, body)     runs the async body; an exception it throws is a
//                          "not ok" point; closes the browser and exits
//                          (1 if a point failed)
import { createRequire } from 'node:module';
import http from 'node:http';

export const { URL: BASE, TRASH, WWW, CHROMIUM } = process.env;
const require = createRequire(`${WWW}/package.json`);
const { chromium } = require('playwright-core');

export const T = { timeout: 60000 }; // one UI step: a guard, generous on a loaded machine
export let failed = 0;

export function ok(cond, desc) {
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} - ${desc}`);
}

export async function step(desc, fn) {
  try {
    await fn();
    ok(true, desc);
  } catch (e) {
    ok(false, desc);
    console.log(`# ${String(e.message).split('\n').slice(0, 3).join(' | ')}${e.cause ? ` (${e.cause})` : ''}`);
  }
}

export function expect(cond, what) {
  if (!cond) throw new Error(what);
}

export function deadline(seconds) {
  setTimeout(() => {
    console.log(`not ok - the browser test finished within ${seconds} s`);
    process.exit(1);
  }, seconds * 1000).unref();
}

export function httpJson(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${BASE}/api/v2/${path}`, {
      method, agent: false, timeout: 10000,
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
    }, (r) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c) => { text += c; });
      r.on('end', () => {
        try {
          resolve({ status: r.statusCode, json: JSON.parse(text) });
        } catch (e) {
          reject(new Error(`${method} ${path}: ${r.statusCode} ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

export async function api(path) {
  const r = await httpJson('GET', path);
  if (r.status < 200 || r.status > 299) throw new Error(`${path}: ${r.status}`);
  return r.json;
}

export async function force(builder) {
  const body = { jsonrpc: '2.0', id: 1, method: 'force', params: { builderNames: [builder], reason: 'ui test' } };
  const r = await httpJson('POST', 'forceschedulers/force', body);
  if (r.status !== 200) throw new Error(`force ${builder}: ${r.status} ${JSON.stringify(r.json)}`);
  return Object.values(r.json.result[1])[0];
}

export async function launch(viewport, ignore = null) {
  const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  const page = await browser.newPage({ viewport });
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && !(ignore && ignore.test(m.text())) && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return { browser, page, errors };
}

export async function run(browser, body) {
  try {
    await body();
  } catch (e) {
    ok(false, `the browser test ran to its end: ${e.message}`);
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}
