// Browser half of bench/ui-log.sh: the log viewer on a big log in Debian's
// Chromium (playwright-core from www/node_modules).  Measured in the page
// with performance.now(): navigation start -> the last line's text shown;
// a search across the whole log through the UI (next from the top to the
// needle near the end, then prev back to the one near the start).
// Environment: URL, LOGID, NLINES, WWW, CHROMIUM.
import { createRequire } from 'node:module';

const { URL: BASE, LOGID, NLINES, WWW, CHROMIUM } = process.env;
const require = createRequire(`${WWW}/package.json`);
const { chromium } = require('playwright-core');
const T = { timeout: 120000 };
const n = +NLINES;

const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
const out = {};
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const runs = [];
  for (let rep = 0; rep < 3; rep++) {
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
    await page.locator(`.log-line[data-line="${n}"] .log-text`).waitFor(T);
    await page.waitForFunction(() => window.kilnTailMs, null, T);
    const t = await page.evaluate(() => ({
      tail: window.kilnTailMs,
      nav: performance.getEntriesByType('navigation')[0].responseEnd,
      bytes: performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/v2/'))
        .reduce((s, r) => s + r.encodedBodySize, 0),
      dom: document.querySelectorAll('.log-line').length,
    }));
    runs.push(t);
    console.log(`tail rendered ${Math.round(t.tail)} ms after navigation start ` +
      `(${t.bytes} bytes of API answers, ${t.dom} line elements)`);
  }
  runs.sort((a, b) => a.tail - b.tail);
  out.tail_ms = Math.round(runs[1].tail);
  out.tail_api_bytes = runs[1].bytes;

  // search: from the top, next to the needle near the end; then prev to the first
  await page.goto(`${BASE}/logs/${LOGID}#L1`);
  await page.locator('.log-line.log-hl[data-line="1"]').waitFor(T);
  await page.fill('.log-search input[type=search]', 'needle');
  let t0 = await page.evaluate(() => performance.now());
  await page.click('.log-search button:text("next")');
  await page.locator('.log-line.log-match .log-text', { hasText: 'needle-10 ' }).waitFor(T);
  let t1 = await page.evaluate(() => performance.now());
  console.log(`search next to the first needle (near the top): ${Math.round(t1 - t0)} ms`);
  t0 = await page.evaluate(() => performance.now());
  await page.click('.log-search button:text("next")');
  await page.locator('.log-line.log-match .log-text', { hasText: `needle-${n}`.slice(0, 8) }).waitFor(T);
  await page.waitForFunction((first) => {
    const e = document.querySelector('.log-line.log-match');
    return e && +e.dataset.line > first;
  }, 100, T);
  t1 = await page.evaluate(() => performance.now());
  const reqs = await page.evaluate(() =>
    performance.getEntriesByType('resource').filter((r) => r.name.includes('/search?')).length);
  out.search_next_ms = Math.round(t1 - t0);
  const line = await page.locator('.log-line.log-match').getAttribute('data-line');
  console.log(`search next across the log to line ${line}: ${out.search_next_ms} ms (${reqs} search requests in all)`);
  t0 = await page.evaluate(() => performance.now());
  await page.click('.log-search button:text("prev")');
  await page.locator('.log-line.log-match .log-text', { hasText: 'needle-10 ' }).waitFor(T);
  t1 = await page.evaluate(() => performance.now());
  out.search_prev_ms = Math.round(t1 - t0);
  console.log(`search prev back across the log: ${out.search_prev_ms} ms`);
  out.search_requests = reqs;
} finally {
  await browser.close();
}
console.log(`ui-log-json ${JSON.stringify(out)}`);
