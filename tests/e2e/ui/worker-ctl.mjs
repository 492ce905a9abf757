// Browser half of tests/e2e/t1058-ui-worker-kill.sh: the workers view's
// "Kill" and "Stop gracefully" buttons (www/src/workers.js) in Debian's
// Chromium through playwright-core against a real master and kiln-workers.
// Prints "ok - ..." / "not ok - ..." lines (the shell numbers them) and
// "# ..." diagnostics; every wait is a bounded playwright wait.
//
// Environment: URL (the master), TRASH (the test's directory: screenshots,
// and the gate files the builds wait for), WWW, CHROMIUM.
import { writeFileSync } from 'node:fs';
import { BASE, TRASH, T, step, deadline, api, force, launch, run, ok } from './harness.mjs';

deadline(180);

// the one deliberate API error (a 501) is logged by Chromium as a failed load
const { browser, page, errors } = await launch({ width: 1100, height: 600 }, /status of 501/);

const row = (name) => page.locator(`tr[data-worker="${name}"]`);

// polls the API (bounded) until pred(value of fn) holds
async function until(what, fn, pred) {
  let v;
  for (let i = 0; i < 400; i++) {
    v = await fn();
    if (pred(v)) return v;
    await page.waitForTimeout(50); // polling the API, bounded
  }
  throw new Error(`${what}: last ${JSON.stringify(v)}`);
}

await run(browser, async () => {
  await step('/workers loads and its /ws stream is live', async () => {
    const resp = await page.goto(`${BASE}/workers`);
    if (resp.status() !== 200) throw new Error(`GET /workers answered ${resp.status()}`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    await row('w1').locator('[data-state="connected"]').waitFor(T);
    await row('w2').locator('[data-state="connected"]').waitFor(T);
    await page.evaluate(() => { window.__workerctlNoReload = 1; });
  });
  let brid;
  await step('a running build is listed on w1, without a reload', async () => {
    brid = await force('slow');
    await row('w1').locator('a.wbuild', { hasText: 'slow #1' }).waitFor(T);
  });
  await step("an error from the API is shown (the master's own message)", async () => {
    // the real master answers a rewritten call: an action it does not have
    await page.route('**/api/v2/workers/*', (route) => {
      const req = route.request();
      if (req.method() !== 'POST') return route.continue();
      const body = JSON.parse(req.postData());
      body.method = 'explode';
      return route.continue({ postData: JSON.stringify(body) });
    });
    await row('w2').getByRole('button', { name: 'stop w2 gracefully' }).click();
    await row('w2').getByRole('alert').filter({ hasText: 'action: explode is not supported' }).waitFor(T);
    await page.unroute('**/api/v2/workers/*');
    const [w] = (await api('workers/w2')).workers;
    if (w.graceful || !w.connected_to.length) throw new Error('w2 changed');
  });
  await step('Kill asks first; Cancel leaves w1 connected', async () => {
    await row('w1').getByRole('button', { name: 'kill w1', exact: true }).click();
    const confirm = row('w1').getByRole('group', { name: 'confirm kill w1' });
    await confirm.waitFor(T);
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'detached', timeout: T.timeout });
    const [w] = (await api('workers/w1')).workers;
    if (!w.connected_to.length) throw new Error('w1 disconnected after Cancel');
    await row('w1').locator('a.wbuild', { hasText: 'slow #1' }).waitFor(T);
  });
  await step('Kill on w1 running a build: shown offline without a reload', async () => {
    await row('w1').getByRole('button', { name: 'kill w1', exact: true }).click();
    await row('w1').getByRole('button', { name: 'yes, kill w1' }).click();
    await row('w1').locator('[data-state="offline"]').waitFor(T);
    await row('w1').locator('a.wbuild').waitFor({ state: 'detached', timeout: T.timeout });
    const marker = await page.evaluate(() => window.__workerctlNoReload);
    if (marker !== 1) throw new Error('the page was reloaded');
    if (await row('w1').getByRole('button', { name: 'kill w1', exact: true }).count()) {
      throw new Error('an offline worker still offers Kill');
    }
  });
  await page.screenshot({ path: `${TRASH}/workerctl-killed.png`, fullPage: true });
  await step('the killed build ended RETRY (Buildbot: lost connection)', async () => {
    const [b] = await until('build of the killed request',
      async () => (await api(`builds?buildrequestid=${brid}&order=buildid&limit=1`)).builds,
      (bs) => bs.length && bs[0].complete);
    if (b.results !== 5) throw new Error(`results ${b.results} (${b.state_string})`);
  });
  await step('Stop gracefully on w2 running a build: "stopping: finishing 1 build"', async () => {
    await force('slow2');
    await row('w2').locator('a.wbuild', { hasText: 'slow2 #1' }).waitFor(T);
    await row('w2').getByRole('button', { name: 'stop w2 gracefully' }).click();
    await row('w2').locator('[data-state="stopping"]', { hasText: 'stopping: finishing 1 build' }).waitFor(T);
    const [w] = (await api('workers/w2')).workers;
    if (!w.graceful) throw new Error('the API does not say graceful');
  });
  await page.screenshot({ path: `${TRASH}/workerctl-stopping.png`, fullPage: true });
  await step('w2 finishes its build SUCCESS, then is shown offline', async () => {
    writeFileSync(`${TRASH}/gate2`, '');
    await row('w2').locator('[data-state="offline"]').waitFor({ timeout: 40000 });
    const bs = (await api('builds?complete=true&order=-buildid&limit=1')).builds;
    if (!bs.length || bs[0].results !== 0) throw new Error(`last build: ${JSON.stringify(bs[0])}`);
  });
  writeFileSync(`${TRASH}/gate`, ''); // the retried slow request may run later; let it end
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);
});
