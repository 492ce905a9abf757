// Browser half of tests/e2e/t1069-ui-builders-past-a-page.sh: with 1,003
// builders, the waterfall filtered to the last one shows its column, and the
// unfiltered waterfall counts every builder.
//
// Environment: URL, TRASH, WWW, CHROMIUM (tests/e2e/lib-ui.sh).
import { BASE, TRASH, T, ok, step, expect, deadline, launch, run } from './harness.mjs';

deadline(150);
const { browser, page, errors } = await launch({ width: 1100, height: 700 });

await run(browser, async () => {
  await step('the waterfall has a column for each of the 1,003 builders', async () => {
    await page.goto(`${BASE}/waterfall`);
    await page.locator('.waterfall .vbox[data-cols="1003"]').waitFor(T);
  });
  await step('filtered to b1003 (past the first page), its column is there', async () => {
    await page.goto(`${BASE}/waterfall?name=b1003`);
    await page.locator('.waterfall .vbox[data-cols="1"]').waitFor(T);
    await page.locator('.waterfall .colname', { hasText: 'b1003' }).waitFor(T);
  });
  await page.screenshot({ path: `${TRASH}/past-a-page.png` });
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);
});
