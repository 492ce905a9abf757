// Browser half of tests/e2e/t1010-ui-log-viewer.sh: the log viewer in
// Debian's Chromium (playwright-core from www/node_modules) against a real
// master.  Prints "ok - ..." / "not ok - ..." lines (the shell numbers them)
// and "# ..." diagnostics.  Every wait is a bounded playwright wait.
//
// Environment: URL (the master), TRASH (gates slow-N, screenshots), WWW
// (www/), CHROMIUM, LOGID and NLINES (the finished coloured log).
import { writeFileSync } from 'node:fs';
import { BASE, TRASH, T, ok, step, deadline, api, force, launch, run } from './harness.mjs';

const { LOGID, NLINES } = process.env;
const SLOW = 12; // lines of the "slow" builder's step

deadline(260);

const { browser, page, errors } = await launch({ width: 1000, height: 640 });

const n = +NLINES;
// the line (1-based, as shown) of output line 30000: the log's header comes first
const tailLine = (await api(`logs/${LOGID}/search?q=line%2030000`)).matches[0].line + 1;
const line = (no) => page.locator(`.log-line[data-line="${no}"]`);
const lineText = (no) => line(no).locator('.log-text').textContent();
await run(browser, async () => {
  await step('the long log opens at its tail (its last line shown), the page is live', async () => {
    // the page notes when the last line first shows its text (performance.now())
    await page.addInitScript((last) => {
      new MutationObserver((_, obs) => {
        const e = document.querySelector(`.log-line[data-line="${last}"] .log-text`);
        if (e && e.textContent) {
          window.kilnTailMs = performance.now();
          obs.disconnect();
        }
      }).observe(document, { childList: true, subtree: true, characterData: true });
    }, n);
    await page.goto(`${BASE}/logs/${LOGID}`);
    await line(tailLine).locator('.log-text', { hasText: 'line 30000 of the long log' }).waitFor(T);
    await line(n).waitFor(T);
    const ms = await page.evaluate(() => Math.round(window.kilnTailMs));
    console.log(`# tail of ${n} lines rendered ${ms} ms after navigation start`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    const res = await page.evaluate(() => performance.getEntriesByType('resource')
      .map((r) => `${r.name.replace(/^https?:\/\/[^/]+/, '')} ${Math.round(r.startTime)}-${Math.round(r.responseEnd)}`));
    console.log(`# requests: ${res.join(', ')}`);
    const box = await line(n).boundingBox();
    const view = await page.locator('.log-scroll').boundingBox();
    if (!box || box.y + box.height > view.y + view.height + 2 || box.y < view.y)
      throw new Error(`last line at ${JSON.stringify(box)} is not inside ${JSON.stringify(view)}`);
  });
  await step('only the visible lines and a margin are in the DOM', async () => {
    const count = await page.locator('.log-line').count();
    if (count < 20 || count > 400) throw new Error(`${count} line elements`);
  });
  await step('ANSI colours are spans with a colour, escape codes gone', async () => {
    const span = line(tailLine).locator('.log-text span[class*="-fg"]').first();
    await span.waitFor(T);
    const c = await span.evaluate((e) => getComputedStyle(e).color);
    const plain = await line(tailLine).locator('.log-text').evaluate((e) => getComputedStyle(e).color);
    if (c === plain) throw new Error(`coloured span has the plain colour ${c}`);
    const text = await lineText(tailLine);
    if (text !== 'line 30000 of the long log, bold') throw new Error(`text shown: ${JSON.stringify(text)}`);
    if (!(await line(tailLine).locator('.ansi-bold').count())) throw new Error('no bold span');
  });
  await step('the raw download link is there', async () => {
    const href = await page.locator('a[download]').getAttribute('href');
    if (href !== `/api/v2/logs/${LOGID}/raw`) throw new Error(`raw link ${href}`);
  });

  // deep links
  await step('#L1234 highlights line 1234 and scrolls to it', async () => {
    await page.goto(`${BASE}/logs/${LOGID}#L1234`);
    await page.locator('.log-line.log-hl[data-line="1234"]').waitFor(T);
    await line(1234).locator('.log-text', { hasText: 'line' }).waitFor(T);
  });
  await step('... and again after a reload', async () => {
    await page.reload();
    await page.locator('.log-line.log-hl[data-line="1234"]').waitFor(T);
    if (!(await line(1234).isVisible())) throw new Error('line 1234 not visible');
  });
  await step('clicking a line number sets the link (#L1240) and the highlight', async () => {
    await line(1240).locator('.log-no').click();
    await page.locator('.log-line.log-hl[data-line="1240"]').waitFor(T);
    if (!page.url().endsWith('#L1240')) throw new Error(`url ${page.url()}`);
    if (await page.locator('.log-line.log-hl[data-line="1234"]').count()) throw new Error('old highlight kept');
  });

  // search
  const status = page.locator('.log-status');
  const matchLine = async () => +(await page.locator('.log-line.log-match').getAttribute('data-line'));
  let m1 = 0;
  let m2 = 0;
  await step('search: next finds needle-5000 after the current line', async () => {
    await page.fill('.log-search input[type=search]', 'needle');
    await page.click('.log-search button:text("next")');
    await status.filter({ hasText: 'match at line' }).waitFor(T);
    await page.locator('.log-line.log-match .log-text', { hasText: 'needle-5000' }).waitFor(T);
    m1 = await matchLine();
  });
  await step('search: next again finds needle-15000 (far below: fetched when scrolled to)', async () => {
    const t0 = await page.evaluate(() => performance.now());
    await page.click('.log-search button:text("next")');
    await page.locator('.log-line.log-match .log-text', { hasText: 'needle-15000' }).waitFor(T);
    const t1 = await page.evaluate(() => performance.now());
    m2 = await matchLine();
    console.log(`# search next to line ${m2} shown in ${Math.round(t1 - t0)} ms`);
    if (!(m2 > m1)) throw new Error(`${m2} is not after ${m1}`);
  });
  await step('search: prev goes back to needle-5000', async () => {
    await page.click('.log-search button:text("prev")');
    await page.locator('.log-line.log-match .log-text', { hasText: 'needle-5000' }).waitFor(T);
    if ((await matchLine()) !== m1) throw new Error(`prev matched ${await matchLine()}`);
  });
  await step('search: prev before the first says so', async () => {
    await page.click('.log-search button:text("prev")');
    await status.filter({ hasText: 'no earlier match' }).waitFor(T);
  });
  await step('search: the query and the match\'s line (#L) live in the URL and survive a reload; ignore case works', async () => {
    await page.fill('.log-search input[type=search]', 'NEEDLE-25000');
    await page.check('.log-search input[type=checkbox]');
    await page.press('.log-search input[type=search]', 'Enter');
    await page.locator('.log-line.log-match .log-text', { hasText: 'needle-25000' }).waitFor(T);
    if (!page.url().includes('q=NEEDLE-25000') || !page.url().includes('icase=1')) throw new Error(page.url());
    // the match's line is the link's (#L...), not the line clicked before (slice "uireview")
    const m = await matchLine();
    if (!page.url().endsWith(`#L${m}`)) throw new Error(`match at line ${m}, url ${page.url()}`);
    await page.reload();
    const v = await page.inputValue('.log-search input[type=search]');
    if (v !== 'NEEDLE-25000') throw new Error(`after reload the box says '${v}'`);
    await page.locator(`.log-line.log-hl[data-line="${m}"] .log-text`, { hasText: 'needle-25000' }).waitFor(T);
  });
  await step('a step log link (/builders/colors/builds/1/steps/long/logs/stdio) shows the same log', async () => {
    await page.goto(`${BASE}/builders/colors/builds/1/steps/long/logs/stdio`);
    await line(tailLine).locator('.log-text', { hasText: 'line 30000' }).waitFor(T);
  });
  await page.screenshot({ path: `${TRASH}/log-viewer.png` });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${TRASH}/log-viewer-dark.png` });
  await page.emulateMedia({ colorScheme: 'light' });

  await step('/ws: logs/N/new, append and finished, each with the log as the API renders it', async () => {
    const got = page.evaluate(() => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      const evs = [];
      const guard = setTimeout(() => reject(new Error(`no finished event: ${JSON.stringify(evs)}`)), 30000);
      ws.onopen = () => ws.send(JSON.stringify({ cmd: 'startConsuming', path: 'logs/*/*', _id: 1 }));
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m._id === 1) window.kilnLogEvents = true;
        if (!m.k) return;
        evs.push(m);
        if (m.k.endsWith('/finished')) {
          clearTimeout(guard);
          ws.close();
          resolve(evs);
        }
      };
    }));
    await page.waitForFunction(() => window.kilnLogEvents, null, T);
    await force('short');
    const evs = await got;
    const id = evs[0].m.logid;
    const kinds = evs.map((e) => e.k.replace(`logs/${id}/`, ''));
    if (kinds[0] !== 'new' || kinds.at(-1) !== 'finished' || kinds.length < 3 ||
        kinds.slice(1, -1).some((k) => k !== 'append'))
      throw new Error(`events ${evs.map((e) => e.k).join(' ')}`);
    if (evs[0].m.num_lines !== 0 || evs[0].m.complete !== false || evs[0].m.name !== 'stdio')
      throw new Error(`new: ${JSON.stringify(evs[0].m)}`);
    const counts = evs.slice(1, -1).map((e) => e.m.num_lines);
    if (counts.some((c, k) => c < (counts[k - 1] ?? 1)))
      throw new Error(`num_lines of the appends: ${counts}`);
    const rest = (await api(`logs/${id}`)).logs[0];
    if (JSON.stringify(evs.at(-1).m) !== JSON.stringify(rest) || rest.complete !== true)
      throw new Error(`finished ${JSON.stringify(evs.at(-1).m)} vs ${JSON.stringify(rest)}`);
    const text = (await api(`logs/${id}/contents`)).logchunks[0].content;
    if (!text.includes('oa\nob\n')) throw new Error(`contents ${JSON.stringify(text)}`);
  });

  // a running log: opened before its lines exist, each line gated by a file
  await force('slow');
  let slowLog = null;
  await step('the slow build starts and has its log', async () => {
    for (let i = 0; i < 200 && !slowLog; i++) {
      const b = await api('builders/slow/builds?order=-number&limit=1');
      const build = b.builds[0];
      if (build) {
        const logs = await api(`builds/${build.buildid}/steps/drip/logs`).catch(() => ({ logs: [] }));
        slowLog = logs.logs.find((l) => l.slug === 'stdio')?.logid ?? null;
      }
      if (!slowLog) await page.waitForTimeout(100); // polling the API, bounded (20 s)
    }
    if (!slowLog) throw new Error('no log for the slow build');
  });
  const slowText = () =>
    page.evaluate(() => [...document.querySelectorAll('.log-line .log-text')]
      .map((e) => e.textContent).filter((t) => t.startsWith('slow line')));
  let worst = 0;
  const waitSlow = (i) => page.locator('.log-line .log-text', { hasText: new RegExp(`^slow line ${i}$`) }).waitFor(T);
  const scrollState = () => page.locator('.log-scroll').evaluate((e) =>
    ({ top: e.scrollTop, bottom: e.scrollTop + e.clientHeight >= e.scrollHeight - 2 }));
  await step(`a log opened mid-run shows each line as it is written, following at the bottom`, async () => {
    await page.setViewportSize({ width: 800, height: 300 }); // a few lines tall: it can scroll
    await page.goto(`${BASE}/logs/${slowLog}`);
    await page.locator('.log-count[data-complete="no"]').waitFor(T);
    for (let i = 1; i < SLOW - 1; i++) {
      const t0 = Date.now();
      writeFileSync(`${TRASH}/slow-${i}`, '');
      await waitSlow(i);
      worst = Math.max(worst, Date.now() - t0);
      if (!(await scrollState()).bottom) throw new Error(`not following at line ${i}`);
    }
    console.log(`# slowest line to appear after its gate opened: ${worst} ms (includes the build's 50 ms poll)`);
  });
  await step('scrolled up, it stops following (a new line does not move the view); "follow" resumes', async () => {
    await page.locator('.log-scroll').evaluate((e) => { e.scrollTop = 0; });
    await page.locator('.log-follow').waitFor(T);
    writeFileSync(`${TRASH}/slow-${SLOW - 1}`, '');
    await waitSlow(SLOW - 1);
    const st = await scrollState();
    if (st.top !== 0) throw new Error(`the view moved to ${st.top}`);
    await page.click('.log-follow');
    await page.waitForFunction(() => {
      const e = document.querySelector('.log-scroll');
      return e.scrollTop > 0 && e.scrollTop + e.clientHeight >= e.scrollHeight - 2;
    }, null, T);
    writeFileSync(`${TRASH}/slow-${SLOW}`, '');
    await waitSlow(SLOW);
  });
  await step('the log ends (the step finished): shown complete, no follow button', async () => {
    await page.locator('.log-count[data-complete="yes"]').waitFor(T);
    await page.locator('.log-follow').waitFor({ state: 'detached', ...T });
  });
  await step('... every line once, in order, no gaps', async () => {
    const got = await slowText();
    const want = Array.from({ length: SLOW }, (_, k) => `slow line ${k + 1}`);
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`got ${JSON.stringify(got)}`);
    const nos = await page.evaluate(() => [...document.querySelectorAll('.log-line')].map((e) => +e.dataset.line));
    const sorted = [...nos].sort((a, b) => a - b);
    for (let k = 1; k < sorted.length; k++)
      if (sorted[k] !== sorted[k - 1] + 1) throw new Error(`line numbers ${sorted.join(',')}`);
  });
  await page.screenshot({ path: `${TRASH}/log-viewer-live.png` });
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);
});
