// Browser half of tests/e2e/t1042-ui-workers.sh: the workers view
// (www/src/workers.js) in Debian's Chromium through playwright-core against
// a real master.  Prints "ok - ..." / "not ok - ..." lines (the shell numbers
// them) and "# ..." diagnostics; every wait is a bounded playwright wait.
//
// Environment: URL (the master), TRASH (the test's directory: screenshots,
// and the files it hands the shell: "stop-w1" asks it to stop worker w1),
// WWW (www/, for playwright-core), CHROMIUM (the browser binary).
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
// API calls on a fresh connection each (agent: false sends Connection:
// close), bounded: a kept-alive socket the master closes as idle must not
// be reused
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
async function api(path) {
  return (await httpJson('GET', path)).json;
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

const row = (name) => page.locator(`tr[data-worker="${name}"]`);
try {
  await step('/workers loads and its /ws stream is live', async () => {
    const resp = await page.goto(`${BASE}/workers`);
    if (resp.status() !== 200) throw new Error(`GET /workers answered ${resp.status()}`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
  });
  await step('w1 is connected, with its system and version from its info', async () => {
    await row('w1').locator('[data-state="connected"]').waitFor(T);
    const sys = await row('w1').locator('td').nth(3).textContent();
    if (!/kiln-/.test(sys)) throw new Error(`system column: '${sys}'`);
  });
  await step('a worker that never connected is offline, last seen never', async () => {
    await row('never').locator('[data-state="offline"]').waitFor(T);
    await row('never').locator('[data-seen="never"]').waitFor(T);
  });
  await step('a running build is listed on its worker, without a reload', async () => {
    await force('slow');
    await row('w1').locator('a.wbuild', { hasText: 'slow #1' }).waitFor(T);
  });
  await step('Pause pauses w1 (shown paused, from its /ws event)', async () => {
    await row('w1').getByRole('button', { name: 'pause w1' }).click();
    await row('w1').locator('[data-state="paused"]').waitFor(T);
    const [w] = (await api('workers/w1')).workers;
    if (!w.paused) throw new Error('the API does not say paused');
  });
  await page.screenshot({ path: `${TRASH}/workers.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${TRASH}/workers-dark.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  writeFileSync(`${TRASH}/gate`, '');
  let brid;
  await step('while paused, a queued build of w1 waits', async () => {
    await row('w1').locator('a.wbuild').waitFor({ state: 'detached', timeout: T.timeout });
    brid = await force('hello');
    const other = await force('other');
    for (let i = 0; i < 400; i++) {
      const [r] = (await api(`buildrequests/${other}`)).buildrequests;
      if (r.complete) break;
      await page.waitForTimeout(50); // polling the API, bounded
    }
    const [r] = (await api(`buildrequests/${brid}`)).buildrequests;
    if (r.claimed) throw new Error('hello was claimed on a paused worker');
  });
  await step('Unpause lets it run', async () => {
    await row('w1').getByRole('button', { name: 'unpause w1' }).click();
    await row('w1').locator('[data-state="connected"]').waitFor(T);
    for (let i = 0; i < 400; i++) {
      const [r] = (await api(`buildrequests/${brid}`)).buildrequests;
      if (r.complete) return;
      await page.waitForTimeout(50);
    }
    throw new Error('hello did not run');
  });
  await step("the worker's page (deep link, reload) shows its info and recent builds", async () => {
    await page.goto(`${BASE}/workers/w1`);
    await page.locator('[data-info="version"]').waitFor(T);
    await page.locator('.recent li', { hasText: 'hello #1' }).waitFor(T);
    await page.reload();
    await page.locator('.recent li', { hasText: 'slow #1' }).waitFor(T);
  });
  await page.screenshot({ path: `${TRASH}/worker.png`, fullPage: true });
  await step('after w1 disconnects the list shows it offline, last seen a moment ago', async () => {
    await page.goto(`${BASE}/workers`);
    await row('w1').locator('[data-state="connected"]').waitFor(T);
    writeFileSync(`${TRASH}/stop-w1`, '');
    await row('w1').locator('[data-state="offline"]').waitFor(T);
    const seen = await row('w1').locator('[data-seen]').getAttribute('data-seen');
    if (!(Number(seen) > Date.now() / 1000 - 120)) throw new Error(`data-seen ${seen}`);
  });
  await page.setViewportSize({ width: 380, height: 700 });
  await page.screenshot({ path: `${TRASH}/workers-phone.png`, fullPage: true });
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
