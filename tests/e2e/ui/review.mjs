// Browser half of tests/e2e/t1070-ui-review.sh: the acceptance review of the
// web UI (issue 11) in Debian's Chromium through playwright-core against a
// real master with real builds.  Prints "ok - ..." / "not ok - ..." lines and
// "# ..." diagnostics; every wait is bounded.
//
// Environment: URL, TRASH (screenshots), WWW (www/, for playwright-core),
// CHROMIUM.
import { writeFileSync } from 'node:fs';
import { BASE, TRASH, T, ok, step, expect, deadline, api, force, launch, run } from './harness.mjs';

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
      height: document.documentElement.scrollHeight, viewH: innerHeight,
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
      // the log scrolls inside its own box, which fits under the header
      if (v.includes('/logs/')) expect(l.height <= l.viewH, `the log page is ${l.height} px high on a ${l.viewH} px screen`);
    });
    if (v === '/') await page.screenshot({ path: `${TRASH}/review-phone-board.png` });
  }

  await page.setViewportSize({ width: 1280, height: 900 });
  await page.emulateMedia({ colorScheme: 'dark' });
  const look = () => page.evaluate(() => [document.documentElement.dataset.theme ?? 'auto',
    getComputedStyle(document.body).backgroundColor]);
  await step('the build page: words spaced ("colors #1 failure", "1 failed, 1 passed"), the triggered build named "child #1", and it "colors #1"', async () => {
    await page.goto(`${BASE}/builds/${b.buildid}`);
    await page.locator('.testset').waitFor(T);
    const h1 = (await page.locator('main h1').innerText()).replace(/\s+/g, ' ').trim();
    expect(h1 === `colors #${b.number} failure`, `the title reads '${h1}'`);
    const sum = (await page.locator('.testset p').first().innerText()).replace(/\s+/g, ' ');
    expect(sum.includes('1 failed, 1 passed, 0 skipped'), `the test summary reads '${sum}'`);
    const [child] = (await api('builders/child/builds?order=-number&limit=1')).builds;
    const trig = page.locator(`li[data-triggered="${child.buildid}"] a`);
    const [tt, th] = [await trig.innerText(), await trig.getAttribute('href')];
    expect(tt === `child #${child.number}` && th === `/builders/child/builds/${child.number}`,
      `the triggered build reads '${tt}' (${th})`);
    await trig.click();
    const up = page.locator(`a[data-parent="${b.buildid}"]`);
    await up.waitFor(T);
    const [ut, uh] = [await up.innerText(), await up.getAttribute('href')];
    expect(ut === `colors #${b.number}` && uh === `/builders/colors/builds/${b.number}`,
      `the child says it was triggered by '${ut}' (${uh})`);
  });
  await step('the build of a change: its blamelist, the change spaced and linked to its page', async () => {
    const [c] = (await api('changes/1')).changes;
    const [cb] = (await api('builders/colors/builds?order=number&limit=1')).builds;
    await page.goto(`${BASE}/builds/${cb.buildid}`);
    const li = page.locator('ul.changes li').first();
    await li.waitFor(T);
    const text = (await li.innerText()).replace(/\s+/g, ' ').trim();
    expect(text === `abc1def Fix the divider ${c.author} · main`, `the change reads '${text}'`);
    await li.locator('a[href="/changes/1"]').click();
    await page.locator('main h1', { hasText: 'abc1def' }).waitFor(T);
  });
  await step('the queue says "unknown" for a request with no expected start (orphan: never built)', async () => {
    await page.goto(`${BASE}/requests`);
    const cell = page.locator('.requests-table tbody tr td').nth(4);
    await cell.waitFor(T);
    expect((await cell.innerText()) === 'unknown', `the cell reads '${await cell.innerText()}'`);
  });
  await step('a build started while the status board is open shows its progress and ETA', async () => {
    await page.goto(`${BASE}/`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    await page.locator('tr[data-builder="gated"]').waitFor(T);
    await force('gated');
    const row = page.locator('tr[data-builder="gated"]');
    await row.locator('.badge.r-running').waitFor(T);
    await row.locator('progress').waitFor(T);
    await row.getByText(/ETA|overdue/).waitFor(T);
  });
  await step('the waterfall shows two builds of one builder running at once side by side (one hid the other)', async () => {
    await force('gated');
    await page.goto(`${BASE}/waterfall`);
    const box = async (n) => {
      const el = page.locator(`.waterfall a.block[data-builder="gated"][data-number="${n}"]`);
      await el.waitFor(T);
      return el.boundingBox();
    };
    const [a, c] = [await box(2), await box(3)];
    const apart = a.x + a.width <= c.x || c.x + c.width <= a.x || a.y + a.height <= c.y || c.y + c.height <= a.y;
    expect(apart, `gated #2 ${JSON.stringify(a)} and #3 ${JSON.stringify(c)} overlap`);
    await page.screenshot({ path: `${TRASH}/review-waterfall.png` });
    writeFileSync(`${TRASH}/gate-2`, '');
    writeFileSync(`${TRASH}/gate-3`, '');
    await page.locator('.waterfall a.block[data-builder="gated"][data-number="3"][data-state="success"]').waitFor({ timeout: 60000 });
  });
  await step('the theme button: light on a dark system (charts repainted), then dark, kept across a reload, then auto', async () => {
    await page.goto(`${BASE}/builders/colors`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    let [t, bg] = await look();
    expect(t === 'auto' && bg === 'rgb(15, 20, 25)', `at first: ${t} ${bg}`);
    // the charts are painted again in the new theme's colours: new canvases
    await page.locator('figure.chart canvas').first().waitFor(T);
    await page.evaluate(() => document.querySelectorAll('figure.chart canvas').forEach((c) => { c.dataset.old = '1'; }));
    await page.locator('button.theme').click();
    [t, bg] = await look();
    expect(t === 'light' && bg === 'rgb(255, 255, 255)', `after one click: ${t} ${bg}`);
    await page.locator('figure.chart canvas:not([data-old])').first().waitFor(T);
    await page.emulateMedia({ colorScheme: 'light' });
    await page.locator('button.theme').click();
    [t, bg] = await look();
    expect(t === 'dark' && bg === 'rgb(15, 20, 25)', `after two clicks: ${t} ${bg}`);
    await page.reload();
    await page.locator('button.theme[data-theme="dark"]').waitFor(T);
    [t, bg] = await look();
    expect(t === 'dark' && bg === 'rgb(15, 20, 25)', `after a reload: ${t} ${bg}`);
    await page.screenshot({ path: `${TRASH}/review-dark-builder.png` });
    await page.locator('button.theme').click();
    [t, bg] = await look();
    expect(t === 'auto' && bg === 'rgb(255, 255, 255)', `after three clicks (light system): ${t} ${bg}`);
  });
  await step('desktop: the log view fits the window (one scrollbar, the log\'s own)', async () => {
    await page.goto(`${BASE}/builders/colors/builds/${b.number}/steps/ansi/logs/stdio`);
    await page.locator('.log-line', { hasText: 'needle here' }).waitFor(T);
    const [h, vh] = await page.evaluate(() => [document.documentElement.scrollHeight, innerHeight]);
    expect(h <= vh, `the log page is ${h} px high in a ${vh} px window`);
  });
  await step('the builder page charts build_duration, warnings and test counts before step durations', async () => {
    const names = await api(`builders/${b.builderid}/numbers`);
    expect(names.numbers.length > 12, `${names.numbers.length} numbers recorded: too few to test the cap`);
    await page.goto(`${BASE}/builders/colors`);
    for (const n of ['build_duration', 'warnings', 'tests_failed', 'tests_total'])
      await page.locator(`figure.chart[data-chart="${n}"] canvas`).first().waitFor(T);
  });
  await step('every page links the Atom feeds of builds and failures, and they answer', async () => {
    const hrefs = await page.evaluate(() =>
      [...document.querySelectorAll('link[rel=alternate][type="application/atom+xml"]')].map((l) => l.getAttribute('href')));
    expect(hrefs.join() === '/feeds/builds.atom,/feeds/failures.atom', `links: ${hrefs}`);
    for (const h of hrefs) {
      const r = await page.request.get(`${BASE}${h}`);
      expect(r.status() === 200 && (await r.text()).includes('<feed'), `${h}: ${r.status()}`);
    }
  });
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);
});
