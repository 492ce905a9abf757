// Browser half of bench/ui-console.sh: /console and /grid on a big database
// in Debian's Chromium (playwright-core from www/node_modules).  For each
// view, three opens: the API requests made until the cells are drawn, the
// JSON bytes they brought (response bodies), and the time from navigation
// start to the first cell drawn with every change row present (the page's
// performance.now(), from a MutationObserver).  Environment: URL, WWW,
// CHROMIUM.
import { createRequire } from 'node:module';

const { URL: BASE, WWW, CHROMIUM } = process.env;
const require = createRequire(`${WWW}/package.json`);
const { chromium } = require('playwright-core');
const T = { timeout: 120000 };

const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
const out = {};
try {
  for (const view of ['console', 'grid']) {
    const runs = [];
    for (let rep = 0; rep < 3; rep++) {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.addInitScript((v) => {
        new MutationObserver((_, obs) => {
          if (document.querySelector(`.${v} .cell`)) {
            window.kilnCellsMs = performance.now();
            obs.disconnect();
          }
        }).observe(document, { childList: true, subtree: true });
      }, view);
      const reqs = [];
      page.on('response', (r) => {
        if (r.url().includes('/api/v2/')) reqs.push(r.body().then((b) => [r.url(), b.length]).catch(() => [r.url(), 0]));
      });
      await page.goto(`${BASE}/${view}`);
      await page.waitForFunction(() => window.kilnCellsMs !== undefined, null, T);
      const ms = await page.evaluate(() => window.kilnCellsMs);
      const cells = await page.locator(`.${view} .cell`).count();
      const got = await Promise.all(reqs);
      const bytes = got.reduce((s, [, n]) => s + n, 0);
      const list = got.map(([u, n]) => `${u.slice(u.indexOf('/api/v2/') + 8, u.indexOf('/api/v2/') + 40)}…=${n}`);
      console.log(`# /${view} #${rep + 1}: cells drawn at ${ms.toFixed(0)} ms, ${cells} cells in the DOM, ` +
        `${got.length} API requests, ${bytes} bytes: ${list.join(' ')}`);
      runs.push({ ms: Math.round(ms), requests: got.length, bytes, dom_cells: cells });
      await page.close();
    }
    out[view] = runs;
  }
} finally {
  await browser.close();
}
console.log(`ui-console-json ${JSON.stringify(out)}`);
