// Browser half of tests/e2e/t1070-ui-review.sh: the acceptance review of the
// web UI (issue 11) in Debian's Chromium through playwright-core against a
// real master with real builds.  Prints "ok - ..." / "not ok - ..." lines and
// "# ..." diagnostics; every wait is bounded.
//
// Environment: URL, TRASH (screenshots), WWW (www/, for playwright-core),
// CHROMIUM.
import { BASE, TRASH, T, ok, step, expect, deadline, api, launch, run } from './harness.mjs';

deadline(200);

const { browser, page, errors } = await launch({ width: 390, height: 844 });

// On a phone: the page is no wider than the screen, and in every table each
// row shows as many cells as its header (counting colspans), so no column's
// header is hidden while its cells stay (or the reverse).
async function phoneLayout() {
  return page.evaluate(() => {
    const shown = (el) => getComputedStyle(el).display !== 'none';
    const cells = (tr) => [...tr.children].filter(shown).reduce((n, c) => n + (c.colSpan || 1), 0);
    const bad = [];
    for (const t of document.querySelectorAll('main table')) {
      const head = t.tHead?.rows[0];
      if (!head) continue;
      const want = cells(head);
      for (const tr of t.tBodies[0]?.rows ?? []) {
        if (tr.children.length === 1) continue; // a "nothing here" row spanning the table
        if (cells(tr) !== want) bad.push(`${t.className || 'table'}: ${want} headers, ${cells(tr)} cells`);
      }
    }
    return { width: document.documentElement.scrollWidth, view: innerWidth,
      header: document.querySelector('header.top').offsetHeight, bad };
  });
}

await run(browser, async () => {
  const [b] = (await api('builders/colors/builds?order=-number&limit=1')).builds;
  const views = ['/', '/builders', '/builders/colors', '/builders/orphan', `/builds/${b.buildid}`,
    '/workers', '/workers/w1', '/requests', '/changes', '/changes/1', '/schedulers', '/force/force',
    '/waterfall', '/console', '/grid', `/builders/colors/builds/${b.number}/steps/ansi/logs/stdio`];
  for (const v of views) {
    await step(`phone (390 px): ${v} fits the screen, its tables' headers line up with their cells`, async () => {
      await page.goto(`${BASE}${v}`);
      await page.locator('#conn[data-online="yes"]').waitFor(T);
      await page.locator('main table tbody tr, main .queue li, main .log-line, main .vbox, main form').first().waitFor(T);
      await page.waitForFunction(() => ![...document.querySelectorAll('main p')].some((p) => p.textContent === 'Loading…'), null, T);
      const l = await phoneLayout();
      expect(l.width <= l.view, `the page is ${l.width} px wide on a ${l.view} px screen`);
      expect(l.bad.length === 0, l.bad.join('; '));
      expect(l.header <= 120, `the header is ${l.header} px high`);
    });
    if (v === '/') await page.screenshot({ path: `${TRASH}/review-phone-board.png` });
  }
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);
});
