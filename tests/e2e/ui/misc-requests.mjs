// Browser half of tests/e2e/t1043-ui-requests.sh: the pending build
// requests view (www/src/requests.js) in Debian's Chromium through
// playwright-core against a real master.  Prints "ok - ..." / "not ok - ..."
// lines and "# ..." diagnostics; every wait is bounded.
//
// Environment: URL, TRASH (screenshots; "gate" opens the running build),
// WWW (www/, for playwright-core), CHROMIUM.
import { writeFileSync } from 'node:fs';
import { BASE, TRASH, T, ok, step, deadline, httpJson, force, launch, run } from './harness.mjs';

deadline(240);

const { browser, page, errors } = await launch({ width: 1100, height: 600 });

const row = (id) => page.locator(`tr[data-request="${id}"]`);
await run(browser, async () => {
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
});
