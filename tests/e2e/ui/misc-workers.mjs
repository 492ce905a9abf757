// Browser half of tests/e2e/t1042-ui-workers.sh: the workers view
// (www/src/workers.js) in Debian's Chromium through playwright-core against
// a real master.  Prints "ok - ..." / "not ok - ..." lines (the shell numbers
// them) and "# ..." diagnostics; every wait is a bounded playwright wait.
//
// Environment: URL (the master), TRASH (the test's directory: screenshots,
// and the files it hands the shell: "stop-w1" asks it to stop worker w1),
// WWW (www/, for playwright-core), CHROMIUM (the browser binary).
import { writeFileSync } from 'node:fs';
import { BASE, TRASH, T, ok, step, deadline, api, force, launch, run } from './harness.mjs';

deadline(240);

const { browser, page, errors } = await launch({ width: 1100, height: 600 });

const row = (name) => page.locator(`tr[data-worker="${name}"]`);
await run(browser, async () => {
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
  await step('a latent worker shows its kind and state; an ordinary one shows none', async () => {
    await row('lat').locator('[data-latent="stopped"]', { hasText: 'command stopped' }).waitFor(T);
    const n = await row('w1').locator('[data-latent]').count();
    if (n !== 0) throw new Error(`w1 has ${n} latent badge(s)`);
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
});
