// Browser half of tests/e2e/t1043-ui-requests.sh: the pending build
// requests view (www/src/requests.js) in Debian's Chromium through
// playwright-core against a real master.  Prints "ok - ..." / "not ok - ..."
// lines and "# ..." diagnostics; every wait is bounded.
//
// Environment: URL, TRASH (screenshots; "gate" opens the running build),
// WWW (www/, for playwright-core), CHROMIUM.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import http from 'node:http';

const { URL: BASE, TRASH, WWW, CHROMIUM } = process.env;
const require = createRequire(`${WWW}/package.json`);
const { chromium } = require('playwright-core');

const T = { timeout: 20000 };
let failed = 0;
function ok(cond, desc) {
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} - ${desc}`);
}
async function step(desc, fn) {
  try {
    await fn();
    ok(true, desc);
  } catch (e) {
    ok(false, desc);
    console.log(`# ${String(e.message).split('\n').slice(0, 3).join(' | ')}`);
  }
}
// API calls on a fresh connection each (agent: false), bounded
function httpJson(method, path, body) {
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
async function force(builder) {
  const body = { jsonrpc: '2.0', id: 1, method: 'force', params: { builderNames: [builder], reason: 'ui test' } };
  const r = await httpJson('POST', 'forceschedulers/force', body);
  if (r.status !== 200) throw new Error(`force ${builder}: ${r.status} ${JSON.stringify(r.json)}`);
  return Object.values(r.json.result[1])[0];
}

setTimeout(() => {
  console.log('not ok - the browser test finished within 240 s');
  process.exit(1);
}, 240000).unref();

const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
const page = await browser.newPage({ viewport: { width: 1100, height: 600 } });
const errors = [];
page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));

const row = (id) => page.locator(`tr[data-request="${id}"]`);
try {
  await step('/requests loads, live, with an empty queue', async () => {
    const resp = await page.goto(`${BASE}/requests`);
    if (resp.status() !== 200) throw new Error(`GET /requests answered ${resp.status()}`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    await page.locator('.summary', { hasText: '0 waiting' }).waitFor(T);
  });
  const running = await force('slow');
  let a, b;
  await step('two requests queued behind a running build appear without a reload', async () => {
    a = await force('hello');
    b = await force('hello');
    await row(a).waitFor(T);
    await row(b).waitFor(T);
    if (await row(running).count()) throw new Error('the running build is listed as pending');
    const name = await row(a).locator('td').nth(1).textContent();
    if (name !== 'hello') throw new Error(`builder column: '${name}'`);
  });
  await page.screenshot({ path: `${TRASH}/requests.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${TRASH}/requests-dark.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await step('Cancel cancels the first: it leaves the list, the API says cancelled', async () => {
    await row(a).getByRole('button', { name: `cancel request ${a}` }).click();
    await row(a).waitFor({ state: 'detached', timeout: T.timeout });
    const [r] = (await httpJson('GET', `buildrequests/${a}`)).json.buildrequests;
    if (!r.complete || r.results !== 6) throw new Error(`request ${a}: ${JSON.stringify(r)}`);
  });
  await step('the deep link survives a reload', async () => {
    await page.reload();
    await row(b).waitFor(T);
  });
  await step('once the running build ends, the other runs and the queue empties', async () => {
    writeFileSync(`${TRASH}/gate`, '');
    await row(b).waitFor({ state: 'detached', timeout: 60000 });
    await page.locator('.summary', { hasText: '0 waiting' }).waitFor(T);
  });
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
