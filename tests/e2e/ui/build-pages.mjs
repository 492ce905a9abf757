// Browser half of tests/e2e/t1020-ui-builds.sh: the builders list, a
// builder page with a chart, a build page, rebuild and stop, in Debian's
// Chromium through playwright-core.  Prints "ok - ..." / "not ok - ..."
// lines and "# ..." diagnostics; every wait is a bounded playwright wait.
//
// Environment: URL (the master), TRASH (screenshots), WWW (www/, for
// playwright-core), CHROMIUM (the browser binary).
import { BASE, TRASH, T, ok, step, expect, deadline, api, force, launch, run } from './harness.mjs';

deadline(280);

const { browser, page, errors } = await launch({ width: 1100, height: 800 });
const chunks = [];
page.on('request', (r) => /\/assets\/chunk\./.test(r.url()) && chunks.push(r.url()));
let apiUrls = null; // the API requests made while set to []
page.on('request', (r) => {
  const u = r.url();
  if (apiUrls && u.includes('/api/v2/')) apiUrls.push(u.slice(u.indexOf('/api/v2/') + 8));
});

await run(browser, async () => {
  // ---- /builders ----
  await step('/builders lists every builder with its last build', async () => {
    await page.goto(`${BASE}/builders`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    await page.locator('tr[data-builder="measured"] [data-number="3"]').waitFor(T);
    await page.locator('tr[data-builder="tested"] td.last [data-result="failure"]').waitFor(T);
    await page.locator('tr[data-builder="gated"]').getByText('no builds yet').waitFor(T);
  });
  await step('1,205 builders: only the rows in view are rendered, scrolling brings the rest', async () => {
    await page.locator('[data-shown="1205"]').waitFor(T);
    const n = await page.locator('tbody tr[data-builder]').count();
    expect(n > 5 && n < 100, `${n} rows rendered`);
    await page.locator('.vlist').evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await page.locator('tr[data-builder="zz-bulk1200"]').waitFor(T);
    expect(await page.locator('tr[data-builder="child"]').count() === 0, 'the first rows are still rendered');
  });
  await step('the tag filter lives in the URL and survives a reload', async () => {
    await page.goto(`${BASE}/builders?tag=qa`);
    await page.locator('[data-shown="2"]').waitFor(T);
    const names = await page.locator('tbody tr[data-builder]').evaluateAll((rs) => rs.map((r) => r.dataset.builder));
    expect(names.join() === 'child,tested', `rows ${names}`);
  });
  await step('the name filter updates the URL', async () => {
    await page.goto(`${BASE}/builders`);
    await page.locator('input[name="name"]').fill('meas');
    await page.locator('[data-shown="1"]').waitFor(T);
    expect(new globalThis.URL(page.url()).search === '?name=meas', `url ${page.url()}`);
  });
  await page.screenshot({ path: `${TRASH}/builders.png`, fullPage: true });
  ok(chunks.length === 0, 'no chart chunk is loaded on a page without charts');

  // ---- builder page with charts ----
  await step('the builder page lists its builds and charts its numbers', async () => {
    apiUrls = [];
    await page.goto(`${BASE}/builders/measured`);
    await page.locator('tr[data-build="3"]').waitFor(T);
    await page.locator('[data-chart="score"] canvas').first().waitFor(T);
    await page.locator('[data-chart="build_duration"] canvas').first().waitFor(T);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    expect(chunks.length === 1, `chunks loaded: ${chunks.length}`);
  });
  await step('... loading each of its API URLs once (no second load after the /ws subscription)', async () => {
    const urls = apiUrls;
    apiUrls = null;
    console.log(`# builder page: ${urls.length} API requests: ${urls.join(' ')}`);
    const twice = urls.filter((u, i) => urls.indexOf(u) !== i);
    expect(urls.length > 0 && twice.length === 0, `requested twice: ${twice.join(' ')}`);
  });
  await step('hovering a point of the chart names its build and links to it', async () => {
    const over = page.locator('[data-chart="score"] .u-over');
    const box = await over.boundingBox();
    await page.mouse.move(box.x + 2, box.y + box.height / 2); // the left end: build #1
    const pick = page.locator('[data-chart="score"] .chart-pick');
    await page.locator('[data-chart="score"] .chart-pick[data-build="#1"]').waitFor(T);
    const text = await pick.textContent();
    expect(/#1: 17/.test(text), `caption '${text}'`);
    expect((await pick.getAttribute('href')) === '/builders/measured/builds/1', 'href');
  });
  await page.screenshot({ path: `${TRASH}/builder.png`, fullPage: true });

  await step('a queued request is cancelled from its builder\'s page', async () => {
    await force('orphan');
    await page.goto(`${BASE}/builders/orphan`);
    const cancel = page.locator('li[data-request] button.cancel');
    await cancel.waitFor(T);
    await page.locator('[data-queued="1"]').waitFor(T);
    await cancel.click();
    await page.locator('[data-queued="0"]').waitFor(T);
    const r = (await api('builders/orphan/buildrequests')).buildrequests[0];
    expect(r.complete && r.results === 6, `request ${JSON.stringify(r)}`);
  });

  // ---- build page ----
  const tested = (await api('builders/tested/builds/1')).builds[0];
  await step('the build page shows its steps with results, state strings and log links', async () => {
    await page.goto(`${BASE}/builders/tested/builds/1`);
    await page.locator('li[data-step="make"] [data-result="success"]').waitFor(T);
    await page.locator('li[data-step="unit"] [data-result="failure"]').waitFor(T);
    const href = await page.locator('li[data-step="make"] a.log').first().getAttribute('href');
    expect(/^\/logs\/\d+$/.test(href), `log link ${href}`);
    const state = await page.locator('li[data-step="unit"]').textContent();
    expect(/2 tests, 1 failed/.test(state), `unit step: ${state}`);
    expect(await page.locator('li[data-step="worker_preparation"]').count() === 1, 'worker_preparation');
  });
  await step('its failing test is listed first, with its history on the builder', async () => {
    await page.locator('.testset[data-failed="1"] li[data-test="divides"]').waitFor(T);
    await page.locator('li[data-test="divides"] summary').click();
    await page.locator('li[data-test="divides"] .history').waitFor(T);
    const h = await page.locator('li[data-test="divides"] .history').textContent();
    expect(/Failing in 1 build/.test(h), `history '${h}'`);
  });
  await step('its properties show with their sources', async () => {
    const row = page.locator('tr[data-prop="color"]');
    await row.waitFor(T);
    const t = await row.textContent();
    expect(/"blue"/.test(t) && /Force Build Form/.test(t), `row '${t}'`);
    await page.locator('tr[data-prop="buildnumber"]').waitFor(T);
  });
  await step('its artifact is linked for download', async () => {
    const a = page.locator('li[data-artifact="dist/out.txt"] a');
    await a.waitFor(T);
    const r = await fetch(`${BASE}${await a.getAttribute('href')}`);
    expect(r.ok && (await r.text()) === 'hello', 'download');
  });
  const child = (await api('builders/child/builds')).builds[0];
  await step('the build it triggered is listed and links to it', async () => {
    await page.locator(`li[data-triggered="${child.buildid}"] [data-result="success"]`).waitFor(T);
  });
  await page.screenshot({ path: `${TRASH}/build.png`, fullPage: true });
  await step('the triggered build links back to the build that triggered it', async () => {
    await page.goto(`${BASE}/builds/${child.buildid}`);
    await page.locator(`a[data-parent="${tested.buildid}"]`).waitFor(T);
  });
  await step('/builds/ID renders the same build', async () => {
    await page.goto(`${BASE}/builds/${tested.buildid}`);
    await page.locator(`section.build[data-buildid="${tested.buildid}"] li[data-step="unit"]`).waitFor(T);
  });

  // ---- rebuild ----
  await step('rebuild makes a new build, shown running and finishing without a reload', async () => {
    await page.goto(`${BASE}/builders/measured/builds/3`);
    await page.locator('li[data-step="bench"]').waitFor(T);
    await page.evaluate(() => { window.__same = true; });
    await page.locator('button.rebuild').click();
    await page.locator('[data-rebuilt] [data-result="success"]').waitFor(T);
    const text = await page.locator('[data-rebuilt]').textContent();
    expect(/#4/.test(text), `note '${text}'`);
    expect(await page.evaluate(() => window.__same === true), 'the page was reloaded');
  });

  // ---- stop, and the board's current step from step events ----
  await step('the status board shows the running build\'s current step (step events)', async () => {
    await page.goto(`${BASE}/`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    await page.locator('tr[data-builder="gated"]').waitFor(T);
    await force('gated'); // after the load: only step events can tell the board its step
    await page.locator('tr[data-builder="gated"] .running .step').getByText('wait').waitFor(T);
  });
  await step('stop ends a running build from its page', async () => {
    await page.goto(`${BASE}/builders/gated/builds/1`);
    await page.locator('li[data-step="wait"] .r-running').waitFor(T);
    await page.locator('[data-live="yes"]').waitFor(T);
    await page.locator('button.stop').click();
    await page.locator('h1 [data-result="cancelled"]').waitFor(T);
    await page.locator('li[data-step="wait"] [data-result="cancelled"]').waitFor(T);
  });
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);
});
