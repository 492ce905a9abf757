// Browser half of tests/e2e/t1030-ui-classic-views.sh: the waterfall, the
// console and the grid in Debian's Chromium (playwright-core) against a real
// master.  Prints "ok - ..." / "not ok - ..." lines and "# ..." diagnostics;
// every wait is a bounded playwright wait on the page.
//
// Environment: URL (the master), TRASH (gates, screenshots), WWW (www/, for
// playwright-core), CHROMIUM (the browser), KILN (the kiln binary: sendchange).
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { BASE, TRASH, T, ok, step, expect, deadline, force, launch, run } from './harness.mjs';

const { KILN } = process.env;
const NBUILDERS = 303;
function sendchange(rev, who, comments) {
  execFileSync(KILN, ['sendchange', '--master', BASE, '--token', 'hooktoken', '--branch', 'main',
    '--who', who, '--revision', rev, '-c', comments], { env: { ...process.env, KILN_CLIENT_CONF: `${TRASH}/none.conf` } });
}

deadline(280);

const { browser, page, errors } = await launch({ width: 1100, height: 700 });

// the page's timers and animation frames, counted (the idle test: none while nothing changes)
await page.addInitScript(() => {
  const t = { intervals: new Set(), timeouts: 0, frames: 0 };
  window.__timers = t;
  const si = window.setInterval;
  const ci = window.clearInterval;
  const st = window.setTimeout;
  const raf = window.requestAnimationFrame;
  window.setInterval = (...a) => {
    const id = si(...a);
    t.intervals.add(id);
    return id;
  };
  window.clearInterval = (id) => {
    t.intervals.delete(id);
    ci(id);
  };
  window.setTimeout = (...a) => {
    t.timeouts++;
    return st(...a);
  };
  window.requestAnimationFrame = (f) => {
    t.frames++;
    return raf(f);
  };
});
const timers = () => page.evaluate(() => ({ intervals: window.__timers.intervals.size,
  timeouts: window.__timers.timeouts, frames: window.__timers.frames }));

const block = (builder, n) => page.locator(`.waterfall .block[data-builder="${builder}"][data-number="${n}"]`);
const mark = () => page.evaluate(() => { window.__noReload = 1; });
const notReloaded = async () => expect(await page.evaluate(() => window.__noReload === 1), 'the page was reloaded');
await run(browser, async () => {
  // ---- waterfall ----
  await step('the waterfall loads and its /ws stream is live', async () => {
    const resp = await page.goto(`${BASE}/waterfall`);
    expect(resp.status() === 200, `GET /waterfall answered ${resp.status()}`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
  });
  await step('alpha #1 and #2 are success blocks, beta #2 a failure block', async () => {
    await block('alpha', 1).and(page.locator('[data-state="success"]')).waitFor(T);
    await block('alpha', 2).and(page.locator('[data-state="success"]')).waitFor(T);
    await block('beta', 2).and(page.locator('[data-state="failure"]')).waitFor(T);
  });
  await step('a block links to its build page', async () => {
    const href = await block('beta', 2).getAttribute('href');
    expect(href === '/builders/beta/builds/2', `href ${href}`);
  });
  await step(`columns are virtualised: ${NBUILDERS} builders, only the visible ones in the DOM`, async () => {
    await page.locator(`.waterfall .vbox[data-cols="${NBUILDERS}"]`).waitFor(T);
    const n = await page.locator('.waterfall .colname').count();
    expect(n > 3 && n < 30, `${n} column headers in the DOM`);
    await page.locator('.waterfall .vbox').evaluate((el) => { el.scrollLeft = el.scrollWidth; });
    await page.locator('.waterfall .colname', { hasText: 'many-300' }).waitFor(T);
    expect(await page.locator('.waterfall .colname', { hasText: 'alpha' }).count() === 0, 'alpha still rendered');
    await page.locator('.waterfall .vbox').evaluate((el) => { el.scrollLeft = 0; });
    await page.locator('.waterfall .colname', { hasText: 'alpha' }).waitFor(T);
  });
  await mark();
  await step('a forced build of gamma appears running without a reload', async () => {
    await force('gamma');
    await block('gamma', 1).and(page.locator('[data-state="running"]')).waitFor(T);
    await notReloaded();
    const t = await timers();
    expect(t.intervals === 1, `${t.intervals} interval timers while a build runs (want 1: its growth)`);
  });
  await step('hovering it shows its steps (wait)', async () => {
    await block('gamma', 1).hover();
    await page.locator('.wf-detail .steps li', { hasText: 'wait' }).waitFor(T);
  });
  await page.screenshot({ path: `${TRASH}/classic-waterfall-running.png` });
  await step('... and finished (success) once its gate opens, still without a reload', async () => {
    writeFileSync(`${TRASH}/gate-1`, '');
    await block('gamma', 1).and(page.locator('[data-state="success"]')).waitFor(T);
    await notReloaded();
    const t = await timers();
    expect(t.intervals === 0, `${t.intervals} interval timers left once nothing runs`);
  });
  await page.screenshot({ path: `${TRASH}/classic-waterfall.png` });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${TRASH}/classic-waterfall-dark.png` });
  await page.emulateMedia({ colorScheme: 'light' });
  await step('a hidden tab does nothing: a build that finishes meanwhile makes no request, and shows once the tab is seen', async () => {
    const apiCount = () => page.evaluate(() =>
      performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/v2/')).length);
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    const before = await apiCount();
    await force('alpha');
    // bounded wait on the API (the page is "hidden": it must not be the one to tell)
    const end = Date.now() + 20000;
    let last = '';
    for (;;) {
      try {
        const r = await fetch(`${BASE}/api/v2/builders/alpha/builds?order=-number&limit=1`);
        const [b] = (await r.json()).builds;
        if (b?.number === 3 && b.complete) break;
        last = JSON.stringify(b);
      } catch (e) {
        last = `${e.message} ${e.cause?.message ?? ''}`;
      }
      if (Date.now() > end) throw new Error(`alpha #3 did not finish: ${last}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(await block('alpha', 3).count() === 0, 'the hidden page drew alpha #3');
    expect(await apiCount() === before, 'the hidden page made API requests');
    await page.evaluate(() => {
      delete document.hidden; // back to the prototype's getter
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await block('alpha', 3).and(page.locator('[data-state="success"]')).waitFor(T);
    await notReloaded();
  });
  await step('a name filter is in the URL and survives a reload', async () => {
    await page.goto(`${BASE}/waterfall?name=alp`);
    await page.locator('.waterfall .vbox[data-cols="1"]').waitFor(T);
    await block('alpha', 2).waitFor(T);
    expect(await page.locator('.waterfall .block[data-builder="beta"]').count() === 0, 'beta shown');
    expect(await page.locator('input[name="name"]').inputValue() === 'alp', 'the field lost the filter');
  });

  // ---- console ----
  await step('the console shows the changes, newest first', async () => {
    await page.goto(`${BASE}/console`);
    await page.locator('.console .vrow[data-revision="bbb2220000"]').waitFor(T);
    const revs = await page.locator('.console .vrow').evaluateAll((rs) => rs.map((r) => r.dataset.revision));
    expect(revs.join(' ') === 'bbb2220000 aaa1110000', `rows ${revs.join(' ')}`);
    await page.locator('.console .vrow[data-revision="bbb2220000"] .info', { hasText: 'Bo Coder' }).waitFor(T);
  });
  await step('... with each builder\'s result of each change', async () => {
    const cell = (rev, b) => page.locator(`.console .cell[data-revision="${rev}"][data-builder="${b}"]`);
    await cell('bbb2220000', 'alpha').and(page.locator('[data-state="success"]')).waitFor(T);
    await cell('bbb2220000', 'beta').and(page.locator('[data-state="failure"]')).waitFor(T);
    await cell('aaa1110000', 'alpha').and(page.locator('[data-state="success"]')).waitFor(T);
    expect(await cell('bbb2220000', 'gamma').count() === 0, 'gamma has a build of bbb222');
  });
  await step('... virtualised: not all builder columns are in the DOM', async () => {
    const n = await page.locator('.console .colname').count();
    expect(n > 3 && n < 60, `${n} column headers`);
  });
  await page.screenshot({ path: `${TRASH}/classic-console.png` });
  await mark();
  await step('a change sent while the console is open appears within 1 s, without a reload', async () => {
    sendchange('ccc3330000', 'Cy <cy@example.org>', 'Third change');
    const t0 = Date.now();
    await page.locator('.console .vrow[data-revision="ccc3330000"]').waitFor(T);
    const ms = Date.now() - t0;
    console.log(`# the change appeared ${ms} ms after sendchange returned`);
    expect(ms <= 1000, `${ms} ms`);
    await notReloaded();
  });
  await step('... and its builds fill its row as they finish', async () => {
    await page.locator('.console .cell[data-revision="ccc3330000"][data-builder="beta"][data-state="failure"]').waitFor(T);
    await page.locator('.console .cell[data-revision="ccc3330000"][data-builder="alpha"][data-state="success"]').waitFor(T);
  });

  // ---- grid ----
  await step('the grid shows builders x changes', async () => {
    await page.goto(`${BASE}/grid`);
    await page.locator(`.grid .vbox[data-rows="${NBUILDERS}"][data-cols="3"]`).waitFor(T);
    await page.locator('.grid .cell[data-builder="alpha"][data-revision="bbb2220000"][data-state="success"]').waitFor(T);
    await page.locator('.grid .cell[data-builder="beta"][data-revision="aaa1110000"][data-state="failure"]').waitFor(T);
    const first = await page.locator('.grid .colchange').first().getAttribute('data-change');
    const ids = await page.locator('.grid .colchange').evaluateAll((cs) => cs.map((c) => Number(c.dataset.change)));
    expect(Number(first) === Math.max(...ids), 'the newest change is not first');
  });
  await step('... rows virtualised: not all builders are in the DOM', async () => {
    const n = await page.locator('.grid .vrow').count();
    expect(n > 3 && n < 60, `${n} rows`);
  });
  await page.screenshot({ path: `${TRASH}/classic-grid.png` });
  await step('a tag filter in the URL survives a reload (tag=c: alpha, gamma)', async () => {
    await page.goto(`${BASE}/grid?tag=c`);
    await page.locator('.grid .vbox[data-rows="2"]').waitFor(T);
    await page.reload();
    await page.locator('.grid .vbox[data-rows="2"]').waitFor(T);
    const names = await page.locator('.grid .vrow').evaluateAll((rs) => rs.map((r) => r.dataset.builder));
    expect(names.join(' ') === 'alpha gamma', names.join(' '));
  });
  await step('a branch filter with no changes shows none', async () => {
    await page.goto(`${BASE}/console?branch=nosuch`);
    await page.locator('.console', { hasText: 'No changes yet.' }).waitFor(T);
  });
  await step('?limit=1 pages the console: the newest change, then the next one on "Older changes"', async () => {
    await page.goto(`${BASE}/console?limit=1`);
    await page.locator('.console .vbox[data-rows="1"]').waitFor(T);
    await page.locator('.console .vrow[data-revision="ccc3330000"]').waitFor(T);
    await page.getByRole('button', { name: 'Older changes' }).click();
    await page.locator('.console .vbox[data-rows="2"]').waitFor(T);
    await page.locator('.console .vrow[data-revision="bbb2220000"]').waitFor(T);
  });
  await step('?limit=2 pages the waterfall: two builds, two more on "Older builds"', async () => {
    await page.goto(`${BASE}/waterfall?limit=2`);
    await page.locator('.waterfall .vbox[data-builds="2"]').waitFor(T);
    await page.getByRole('button', { name: 'Older builds' }).click();
    await page.locator('.waterfall .vbox[data-builds="4"]').waitFor(T);
  });
  await step('an idle waterfall uses no CPU: no timer, timeout or frame, and main-thread task time in 3 s', async () => {
    await page.goto(`${BASE}/waterfall`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    await block('gamma', 1).waitFor(T);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const busy = async () => (await cdp.send('Performance.getMetrics')).metrics
      .find((m) => m.name === 'TaskDuration').value;
    // two 3 s measurement windows (not synchronisation): the quieter one counts, so a
    // one-off browser task (a GC, say) is not taken for the page's own work
    const t0 = await timers();
    const windows = [];
    for (let i = 0; i < 2; i++) {
      const b0 = await busy();
      await page.waitForTimeout(3000);
      windows.push((await busy() - b0) * 1000);
    }
    const ms = Math.min(...windows);
    const t1 = await timers();
    expect(t1.intervals === 0 && t1.timeouts === t0.timeouts && t1.frames === t0.frames,
      `timers while idle: ${JSON.stringify(t0)} -> ${JSON.stringify(t1)}`);
    console.log(`# idle waterfall: ${windows.map((w) => w.toFixed(1)).join(' and ')} ms of main-thread tasks in 3 s`);
    expect(ms < 30, `${ms.toFixed(1)} ms`);
  });
  await step('on a phone (390 px) the views fit the screen, their first column leaves room for the cells', async () => {
    await page.setViewportSize({ width: 390, height: 800 });
    for (const v of ['waterfall', 'console', 'grid']) {
      await page.goto(`${BASE}/${v}`);
      await page.locator(`.${v} .vbox[data-cols]`).waitFor(T);
      const w = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(w <= 390, `/${v} is ${w} px wide`);
      const info = await page.locator(`.${v} .vrow .info`).first().boundingBox().catch(() => null);
      expect(!info || info.width <= 160, `/${v}: its first column takes ${info?.width} px of 390`);
      if (v === 'console') {
        await page.locator('.console .cell').first().waitFor(T);
        await page.screenshot({ path: `${TRASH}/classic-console-phone.png` });
      }
    }
  });
  ok(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(' | ')})`);
});
