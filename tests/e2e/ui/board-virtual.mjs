// Browser half of tests/e2e/t1065-ui-board-virtual.sh: the status board
// with 1,000 builders (b0001..b1000; b0500 failed, b0001 succeeded, b0999
// is forced here and waits for the gate file $TRASH/gate).  Only the rows
// in view (plus a margin) are in the DOM; scrolling renders the rows of
// every position; j/k/arrows and Enter; filters; a running build's row
// updated live (its current step within 1 s of the step starting) and only
// that row touched; no timer while nothing runs.
//
// Environment: URL, TRASH, WWW, CHROMIUM (tests/e2e/lib-ui.sh).
import { writeFileSync } from 'node:fs';
import { BASE, TRASH, T, ok, step, expect, deadline, force, api, launch, run } from './harness.mjs';

deadline(240);
const { browser, page, errors } = await launch({ width: 1100, height: 700 });

// counts the page's live intervals (set minus cleared), its timeouts and
// animation frames: "no timers while nothing changes" is checked on them
await page.addInitScript(() => {
  const live = new Set();
  const c = { timeouts: 0, frames: 0 };
  const set = window.setInterval.bind(window);
  const clear = window.clearInterval.bind(window);
  const st = window.setTimeout.bind(window);
  const raf = window.requestAnimationFrame.bind(window);
  window.setInterval = (...a) => {
    const id = set(...a);
    live.add(id);
    return id;
  };
  window.clearInterval = (id) => {
    live.delete(id);
    clear(id);
  };
  window.setTimeout = (...a) => {
    c.timeouts++;
    return st(...a);
  };
  window.requestAnimationFrame = (f) => {
    c.frames++;
    return raf(f);
  };
  window.kilnIntervals = () => live.size;
  // when the page's /ws received step "wait"'s first event (new; the lag split in two)
  window.kilnWsWait = 0;
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (ev) => {
        if (!window.kilnWsWait && /\/(new|started)"/.test(ev.data) && /"name":"wait"/.test(ev.data)) {
          window.kilnWsWait = Date.now();
        }
      });
    }
  };
  window.kilnTimers = () => ({ intervals: live.size, ...c });
});
// main-thread task time (ms) over the next `ms` milliseconds (a measurement window)
let cdp = null;
async function busyMs(ms) {
  if (!cdp) {
    cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
  }
  const task = async () => (await cdp.send('Performance.getMetrics')).metrics
    .find((m) => m.name === 'TaskDuration').value;
  const b0 = await task();
  await page.waitForTimeout(ms);
  return (await task() - b0) * 1000;
}

const row = (name) => page.locator(`tr[data-builder="${name}"]`);
const domRows = () => page.locator('tbody tr').count();

await run(browser, async () => {
  const t0 = Date.now();
  await step('the board loads with 1,000 builders and its /ws stream is live', async () => {
    const resp = await page.goto(`${BASE}/`);
    expect(resp.status() === 200, `GET / answered ${resp.status()}`);
    await page.locator('.vtable[data-rows="1000"]').waitFor(T);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
  });
  console.log(`# 1,000 builders: rows on screen ${Date.now() - t0} ms after the navigation`);
  await step('fewer than 100 rows are in the DOM', async () => {
    const n = await domRows();
    console.log(`# rows in the DOM: ${n} of 1000`);
    expect(n > 10 && n < 100, `${n} rows`);
  });
  await step('broken first: b0500 (failure) is the first row', async () => {
    await row('b0500').locator('td.last [data-result="failure"]').waitFor(T);
    const first = await page.locator('tbody tr').first().getAttribute('data-builder');
    expect(first === 'b0500', `first row is ${first}`);
  });
  await step('b0001 shows its success', () => row('b0001').locator('[data-result="success"]').waitFor(T));
  await step('the page is as tall as 1,000 rows', async () => {
    const h = await page.evaluate(() => document.documentElement.scrollHeight);
    expect(h > 1000 * 25, `scrollHeight ${h}`);
  });

  // ---- scrolling: a sweep top to bottom, a frame at a time ----
  await step('a sweep from top to bottom finds a row under the middle of the window at every frame', async () => {
    const r = await page.evaluate(async () => {
      const frame = () => new Promise((res) => requestAnimationFrame(() => res(performance.now())));
      const out = { frames: 0, blank: 0, maxFrame: 0, maxRows: 0 };
      let last = await frame();
      const max = document.documentElement.scrollHeight - innerHeight;
      for (let y = 0; y <= max + 400; y += 400) {
        scrollTo(0, y);
        const t = await frame();
        await frame(); // the board's scroll handler renders in the next frame
        const t2 = performance.now();
        out.maxFrame = Math.max(out.maxFrame, t2 - t, t - last);
        last = await frame();
        out.frames++;
        const el = document.elementFromPoint(innerWidth / 2, innerHeight / 2);
        if (!el?.closest('tbody tr') && scrollY + innerHeight < document.documentElement.scrollHeight - 200) out.blank++;
        out.maxRows = Math.max(out.maxRows, document.querySelectorAll('tbody tr').length);
      }
      return out;
    });
    console.log(`# sweep: ${r.frames} positions, longest frame ${Math.round(r.maxFrame)} ms, ` +
      `at most ${r.maxRows} rows in the DOM, ${r.blank} blank`);
    expect(r.blank === 0, `${r.blank} positions showed no row`);
    expect(r.maxRows < 100, `${r.maxRows} rows`);
    expect(r.maxFrame < 500, `a frame took ${Math.round(r.maxFrame)} ms`);
  });
  await step('scrolled to the bottom, the last builder (b1000) is shown', async () => {
    await page.evaluate(() => scrollTo(0, document.documentElement.scrollHeight));
    await row('b1000').waitFor(T);
    expect(await row('b1000').isVisible(), 'b1000 not visible');
    const n = await domRows();
    expect(n < 100, `${n} rows`);
  });

  // ---- keyboard ----
  await page.evaluate(() => scrollTo(0, 0));
  await step('j selects the first row in view, j / ArrowDown move down, k / ArrowUp up', async () => {
    await page.locator('tr[data-builder="b0500"]').waitFor(T);
    await page.locator('h1').click(); // the focus off the filters
    await page.keyboard.press('j');
    await page.locator('tr.sel[data-builder="b0500"]').waitFor(T);
    await page.keyboard.press('j');
    await page.locator('tr.sel[data-builder="b0001"]').waitFor(T);
    await page.keyboard.press('ArrowDown');
    await page.locator('tr.sel[data-builder="b0002"]').waitFor(T);
    await page.keyboard.press('k');
    await page.locator('tr.sel[data-builder="b0001"]').waitFor(T);
    await page.keyboard.press('ArrowUp');
    await page.locator('tr.sel[data-builder="b0500"]').waitFor(T);
  });
  await step('moving past the window scrolls the selected row into view (60 × j)', async () => {
    for (let i = 0; i < 60; i++) await page.keyboard.press('j');
    const sel = page.locator('tr.sel[data-builder="b0060"]');
    await sel.waitFor(T);
    const box = await sel.boundingBox();
    expect(box && box.y >= 0 && box.y + box.height <= 700 + 1, `row at ${JSON.stringify(box)}`);
  });
  await step('Enter opens the selected builder, without a reload', async () => {
    await page.evaluate(() => { window.kilnNoReload = 1; });
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/builders\/b0060$/, T);
    await page.locator('h1', { hasText: 'b0060' }).waitFor(T);
    expect((await page.evaluate(() => window.kilnNoReload)) === 1, 'the page reloaded');
    await page.goBack();
    await page.locator('.vtable[data-rows="1000"]').waitFor(T);
  });

  // ---- filters ----
  await step('the name filter shows only the matching builder, in the URL', async () => {
    await page.fill('input[name="name"]', 'b0777');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1, null, T);
    await row('b0777').waitFor(T);
    expect(page.url().endsWith('/?name=b0777'), `url ${page.url()}`);
  });
  await step('the tag filter (?tag=t3): 100 builders, still fewer rows in the DOM', async () => {
    await page.goto(`${BASE}/?tag=t3`);
    await page.locator('.vtable[data-rows="100"]').waitFor(T);
    await row('b0003').waitFor(T);
    const n = await domRows();
    expect(n < 100, `${n} rows`);
    const names = await page.locator('tbody tr').evaluateAll((rs) => rs.map((r) => r.dataset.builder));
    expect(names.every((x) => Number(x.slice(1)) % 10 === 3), `rows ${names.join(' ')}`);
  });

  // ---- live: a forced build's row, and only its row ----
  await page.goto(`${BASE}/`);
  await page.locator('#conn[data-online="yes"]').waitFor(T);
  await page.locator('.vtable[data-rows="1000"]').waitFor(T);
  await step('no timer runs while no build runs', async () => {
    const n = await page.evaluate(() => window.kilnIntervals());
    expect(n === 0, `${n} intervals`);
  });
  await page.evaluate(() => scrollTo(0, document.documentElement.scrollHeight));
  await row('b0999').waitFor(T);
  await page.evaluate(() => {
    // which rows change, and when b0999 first shows its step "wait"
    window.kilnTouched = new Set();
    window.kilnSawWait = 0;
    new MutationObserver((ms) => {
      for (const m of ms) {
        const tr = (m.target.nodeType === 1 ? m.target : m.target.parentElement)?.closest('tr');
        if (tr) window.kilnTouched.add(tr.dataset.builder ?? '(head)');
        if (!window.kilnSawWait && document.querySelector('tr[data-builder="b0999"] .step')?.textContent === 'wait') {
          window.kilnSawWait = Date.now();
        }
      }
    }).observe(document.querySelector('tbody'), { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await force('b0999');
  await step('the forced build shows running, its current step live (first, then wait)', async () => {
    await row('b0999').locator('[data-running="1"]').waitFor(T);
    await row('b0999').locator('.running .step', { hasText: 'wait' }).waitFor(T);
  });
  const waitStep = async () => {
    const bid = (await api('builders/b0999')).builders[0].builderid;
    const { buildid } = (await api(`builds?builderid=${bid}&number=1`)).builds[0];
    return (await api(`builds/${buildid}/steps/wait`)).steps[0];
  };
  await step('the step "wait" reached the row soon after its start (goal: 1 s)', async () => {
    const s = await waitStep();
    const [seen, got] = await page.evaluate(() => [window.kilnSawWait, window.kilnWsWait]);
    const lag = seen - s.started_at * 1000;
    console.log(`# step "wait" started, shown on the board ${Math.round(lag)} ms later ` +
      `(its event reached the page's /ws after ${Math.round(got - s.started_at * 1000)} ms)`);
    // the goal is 1 s end to end (typically 0.1 s here); the bound leaves room for a
    // test machine at a load of 20 on 2 cores (0.4 to 1.0 s seen there), and the
    // page's own share (event received to row drawn) must be small
    expect(got > 0 && seen > 0 && lag < 2000, `lag ${lag} ms`);
    expect(seen - got < 250, `${seen - got} ms from the /ws event to the row`);
  });
  await step('the running step\'s state string is shown, as the API has it', async () => {
    const b = await waitStep();
    await row('b0999').locator('.running .state', { hasText: b.state_string }).waitFor(T);
    expect(b.state_string.length > 0, 'no state string');
  });
  await step('a timer (durations) runs while the build runs, one', async () => {
    await page.waitForFunction(() => window.kilnIntervals() === 1, null, T);
  });
  await step('GET /api/v2/steps?complete=false (the board\'s one request for the running steps) ' +
    'answers b0999\'s step "wait", filtered from its build on', async () => {
    const s = await waitStep();
    const all = (await api('steps?complete=false')).steps;
    const from = (await api(`steps?complete=false&buildid__ge=${s.buildid}&order=buildid&field=buildid&field=name`)).steps;
    const after = (await api(`steps?complete=false&buildid__ge=${s.buildid + 1}`)).steps;
    expect(all.length === 1 && all[0].stepid === s.stepid && all[0].complete === false, `all: ${JSON.stringify(all)}`);
    expect(from.length === 1 && from[0].name === 'wait' && Object.keys(from[0]).sort().join() === 'buildid,name',
      `from: ${JSON.stringify(from)}`);
    expect(after.length === 0, `after: ${JSON.stringify(after)}`);
  });
  await step('a board opened while b0999 runs shows its current step, in at most 6 API requests ' +
    '(the running steps in one, each URL once)', async () => {
    const p2 = await browser.newPage();
    const urls = [];
    p2.on('request', (r) => {
      const u = r.url();
      if (u.includes('/api/v2/')) urls.push(u.slice(u.indexOf('/api/v2/') + 8));
    });
    try {
      await p2.goto(`${BASE}/?name=b0999`);
      await p2.locator('tr[data-builder="b0999"] .running .step', { hasText: 'wait' }).waitFor(T);
      // the first "refetch" (subscribed) is handled before the page shows online:
      // a second load would have started by now
      await p2.locator('#conn[data-online="yes"]').waitFor(T);
      console.log(`# board load: ${urls.length} API requests: ${urls.join(' ')}`);
      expect(urls.length <= 6, `${urls.length} requests`);
      expect(urls.filter((u) => /(^|\/)steps\b/.test(u)).length === 1 && urls.some((u) => /^steps\?/.test(u)),
        'the running steps not read in one /steps request');
      expect(new Set(urls).size === urls.length, 'a URL was requested twice');
    } finally {
      await p2.close();
    }
  });
  const running = await busyMs(3000);
  console.log(`# while b0999 runs (a line every 0.2 s, the duration ticking): ${running.toFixed(1)} ms of ` +
    'main-thread tasks in 3 s');
  await step('the updates touched only the running build\'s row', async () => {
    const t = await page.evaluate(() => [...window.kilnTouched]);
    expect(t.length === 1 && t[0] === 'b0999', `touched ${t.join(' ')}`);
  });
  await step('the build page shows the running step with its state string', async () => {
    const b = await waitStep();
    await page.goto(`${BASE}/builders/b0999/builds/1`);
    await page.locator('li[data-step="wait"] .r-running').waitFor(T);
    await page.locator('li[data-step="wait"]', { hasText: b.state_string }).waitFor(T);
    await page.goBack();
    await page.locator('.vtable[data-rows="1000"]').waitFor(T);
    await page.evaluate(() => scrollTo(0, document.documentElement.scrollHeight));
    await row('b0999').locator('[data-running="1"]').waitFor(T);
  });
  await page.screenshot({ path: `${TRASH}/board-virtual-running.png` });
  writeFileSync(`${TRASH}/gate`, '');
  await step('it is shown finished (success #1) without a reload', async () => {
    await row('b0999').locator('td.last [data-number="1"]').waitFor(T);
    await row('b0999').locator('[data-result="success"]').waitFor(T);
    await row('b0999').locator('[data-running]').waitFor({ state: 'detached', ...T });
  });
  await step('... and the timer stopped with it', async () => {
    await page.waitForFunction(() => window.kilnIntervals() === 0, null, T);
  });
  await step('an idle board of 1,000 builders uses no CPU: no timer, timeout or frame in 3 s', async () => {
    const t0 = await page.evaluate(() => window.kilnTimers());
    // two 3 s measurement windows: the quieter counts (a one-off GC is not the page's work)
    const windows = [await busyMs(3000), await busyMs(3000)];
    const t1 = await page.evaluate(() => window.kilnTimers());
    console.log(`# idle board: ${windows.map((w) => w.toFixed(1)).join(' and ')} ms of main-thread tasks in 3 s`);
    expect(t1.intervals === 0 && t1.timeouts === t0.timeouts && t1.frames === t0.frames,
      `timers while idle: ${JSON.stringify(t0)} -> ${JSON.stringify(t1)}`);
    expect(Math.min(...windows) < 30, `${Math.min(...windows).toFixed(1)} ms`);
  });
  await page.screenshot({ path: `${TRASH}/board-virtual.png` });
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);
});
