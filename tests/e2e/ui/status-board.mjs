// Browser half of tests/e2e/t1000-ui-status-board.sh: drives Debian's
// Chromium through playwright-core (www/node_modules) against a real master.
// Prints "ok - ..." / "not ok - ..." lines (the shell numbers them) and
// "# ..." diagnostics.  Every wait is a bounded playwright wait on the page.
//
// Environment: URL (the master), TRASH (the test's directory: gates,
// screenshots, the restart request), WWW (www/, for playwright-core),
// CHROMIUM (the browser binary).
import { writeFileSync } from 'node:fs';
import { BASE, TRASH, T, ok, step, deadline, force, launch, run } from './harness.mjs';

// a hard stop even if the browser hangs; the shell's own guard is longer
deadline(240);

// the console errors of the first phase are checked before the master
// restarts; those while it is away are expected and dropped (errors emptied)
const { browser, page, errors } = await launch({ width: 1100, height: 600 });

const row = (name) => page.locator(`tr[data-builder="${name}"]`);
await run(browser, async () => {
  await step('the board loads and its /ws stream is live', async () => {
    const resp = await page.goto(`${BASE}/`);
    if (resp.status() !== 200) throw new Error(`GET / answered ${resp.status()}`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
  });
  await step('hello shows its last result, success #1', () =>
    row('hello').locator('td.last [data-result="success"]').waitFor(T));
  // the browser's own timing of that first load (a measurement, not a test point)
  const timing = await page.evaluate(() => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    const api = performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/v2/'));
    return { fcp: fcp && Math.round(fcp.startTime), requests: api.length,
      dataMs: Math.round(Math.max(0, ...api.map((r) => r.responseEnd))),
      bytes: performance.getEntriesByType('resource').reduce((n, r) => n + r.transferSize, 0) };
  });
  console.log(`# first load: first contentful paint ${timing.fcp} ms, board data by ${timing.dataMs} ms ` +
    `(${timing.requests} API requests), ${timing.bytes} bytes transferred after the page`);
  await step('broken shows failure and is listed first (broken first)', async () => {
    await row('broken').locator('td.last [data-result="failure"]').waitFor(T);
    const first = await page.locator('tbody tr').first().getAttribute('data-builder');
    if (first !== 'broken') throw new Error(`first row is ${first}`);
  });
  await step('the worker that never connected is listed offline, the connected one is not', async () => {
    await page.locator('.offline-workers [data-worker="spare"]').waitFor(T);
    if (await page.locator('[data-worker="w1"]').count()) throw new Error('w1 listed offline');
    const txt = await page.locator('.offline-workers').innerText();
    if (!/spare\s*\(never seen\)/.test(txt)) throw new Error(`offline list says: ${txt}`);
  });

  await page.evaluate(() => { window.kilnNoReload = 1; });
  await force('hello');
  await step('a forced build appears running without a reload', () =>
    row('hello').locator('[data-running="2"]').waitFor(T));
  await step('its current step is shown (wait)', () =>
    row('hello').locator('[data-running="2"] .step', { hasText: 'wait' }).waitFor(T));
  await step('the summary counts it running', () =>
    page.locator('[data-running-count="1"]').waitFor(T));
  writeFileSync(`${TRASH}/gate-2`, '');
  await step('it is shown finished (success #2), still without a reload', async () => {
    await row('hello').locator('td.last [data-number="2"]').waitFor(T);
    await row('hello').locator('[data-running]').waitFor({ state: 'detached', ...T });
    if ((await page.evaluate(() => window.kilnNoReload)) !== 1) throw new Error('the page reloaded');
  });

  await step('the name filter keeps only matching builders and goes into the URL', async () => {
    await page.fill('input[name="name"]', 'bro');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1, null, T);
    await row('broken').waitFor(T);
    if (!page.url().endsWith('/?name=bro')) throw new Error(`url ${page.url()}`);
  });
  await step('a reload of the filtered URL shows the same (deep link)', async () => {
    await page.reload();
    await row('broken').waitFor(T);
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1, null, T);
    if ((await page.inputValue('input[name="name"]')) !== 'bro') throw new Error('filter lost');
  });
  await step('the tag filter keeps only builders with that tag', async () => {
    await page.goto(`${BASE}/?tag=fast`);
    await row('hello').waitFor(T);
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1, null, T);
  });
  await step('a builder deep link (/builders/hello) loads its page with both builds', async () => {
    const resp = await page.goto(`${BASE}/builders/hello`);
    if (resp.status() !== 200) throw new Error(`answered ${resp.status()}`);
    await page.locator('h1', { hasText: 'hello' }).waitFor(T);
    await page.locator('tr[data-build="2"] [data-result="success"]').waitFor(T);
    await page.locator('tr[data-build="1"]').waitFor(T);
  });
  await step('back to the board by its link, without a reload', async () => {
    await page.evaluate(() => { window.kilnNoReload = 2; });
    await page.click('text=Back to the status board');
    await row('hello').waitFor(T);
    if ((await page.evaluate(() => window.kilnNoReload)) !== 2) throw new Error('the page reloaded');
  });
  await page.locator('#conn[data-online="yes"]').waitFor(T);
  await page.screenshot({ path: `${TRASH}/status-board.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${TRASH}/status-board-dark.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  console.log(`# screenshots: ${TRASH}/status-board.png ${TRASH}/status-board-dark.png`);
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);

  // the master restarts: the page says offline, then catches up by itself
  writeFileSync(`${TRASH}/restart-now`, '');
  await step('a stopped master shows "offline"', () =>
    page.locator('#conn[data-online="no"]', { hasText: 'offline' }).waitFor({ timeout: 60000 }));
  await page.screenshot({ path: `${TRASH}/status-board-offline.png`, fullPage: true });
  await step('the restarted master is reconnected to', () =>
    page.locator('#conn[data-online="yes"]').waitFor({ timeout: 60000 }));
  errors.length = 0;
  await page.evaluate(() => { window.kilnNoReload = 3; });
  await force('broken');
  await step('events reach the page after the reconnect (broken #2 finished)', async () => {
    await row('broken').locator('td.last [data-number="2"]').waitFor({ timeout: 60000 });
    if ((await page.evaluate(() => window.kilnNoReload)) !== 3) throw new Error('the page reloaded');
  });
  ok(errors.length === 0, `no console errors after the reconnect (${errors.join(' | ')})`);
});
