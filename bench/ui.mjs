// Browser half of bench/ui.sh: each view of the web UI in Debian's Chromium
// (playwright-core from www/node_modules), a fresh browser context (cold
// cache) per run.  All numbers come from the browser itself:
//  - fcp_ms: the 'first-contentful-paint' entry (PerformanceObserver 'paint');
//  - data_ms: the view's performance.mark('kiln:data'), set once its data is
//    rendered (www/src/*.js), both from navigation start;
//  - api_requests / api_transfer_bytes / api_decoded_bytes: Resource Timing
//    entries of /api/v2/ (transferSize, headers included, and decodedBodySize)
//    at the end of the run (after the idle period);
//  - js_css_bytes (transfer) and js_css_decoded_bytes: the scripts and style
//    sheets; page_bytes: everything the page loaded (document included);
//  - api_done_ms: the end of the last /api/v2/ answer that arrived before
//    the data mark; cpu_to_data_ms: the tab's main-thread work (CDP TaskDuration)
//    from its start to just after the mark (what a loaded machine stretches);
//  - serial_ms: after the browser runs, the view's API requests (those of
//    its first run) again from node, one after another, medians of 3 summed;
//  - idle_cpu_ms: CDP Performance.getMetrics TaskDuration over IDLE_S seconds
//    after the data mark (the tab's main-thread work while nothing happens).
// Environment: URL, WWW, CHROMIUM, VIEWS (JSON [[name, path], ...]), RUNS, IDLE_S.
// Prints "# " progress lines and one "ui-json {...}" line (medians per view).
import { createRequire } from 'node:module';

const { URL: BASE, WWW, CHROMIUM } = process.env;
const VIEWS = JSON.parse(process.env.VIEWS);
const RUNS = +(process.env.RUNS || 3);
const IDLE_S = +(process.env.IDLE_S || 10);
const require = createRequire(`${WWW}/package.json`);
const { chromium } = require('playwright-core');
const T = { timeout: 120000 };

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const args = process.getuid?.() === 0 ? ['--no-sandbox'] : [];
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
const out = {};
try {
  for (const [name, path] of VIEWS) {
    const runs = [];
    for (let rep = 0; rep < RUNS; rep++) {
      const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await ctx.newPage();
      await page.addInitScript(() => {
        window.kilnFcp = null;
        new PerformanceObserver((l) => {
          for (const e of l.getEntries())
            if (e.name === 'first-contentful-paint') window.kilnFcp = e.startTime;
        }).observe({ type: 'paint', buffered: true });
      });
      const cdp = await ctx.newCDPSession(page);
      await cdp.send('Performance.enable');
      await page.goto(`${BASE}${path}`);
      await page.waitForFunction(() => performance.getEntriesByName('kiln:data').length > 0 &&
        window.kilnFcp != null, null, T);
      const task = async () => (await cdp.send('Performance.getMetrics')).metrics
        .find((m) => m.name === 'TaskDuration').value;
      const c0 = await task(); // also the tab's main-thread work from its start to its data
      await page.waitForTimeout(IDLE_S * 1000); // the measured idle period itself
      const c1 = await task();
      const r = await page.evaluate(() => {
        const res = performance.getEntriesByType('resource');
        const nav = performance.getEntriesByType('navigation')[0];
        const api = res.filter((e) => new URL(e.name).pathname.startsWith('/api/v2/'));
        const code = res.filter((e) => /\.(js|css)$/.test(new URL(e.name).pathname));
        const sum = (xs, k) => xs.reduce((s, e) => s + (e[k] || 0), 0);
        return {
          fcp_ms: window.kilnFcp,
          data_ms: performance.getEntriesByName('kiln:data')[0].startTime,
          // the last API answer that arrived before the data was shown
          api_done_ms: Math.max(0, ...api.map((e) => e.responseEnd).filter((t) =>
            t <= performance.getEntriesByName('kiln:data')[0].startTime)),
          api_requests: api.length,
          api_transfer_bytes: sum(api, 'transferSize'),
          api_decoded_bytes: sum(api, 'decodedBodySize'),
          js_css_bytes: sum(code, 'transferSize'),
          js_css_decoded_bytes: sum(code, 'decodedBodySize'),
          page_bytes: sum(res, 'transferSize') + (nav?.transferSize || 0),
          api_paths: api.map((e) => { const u = new URL(e.name); return u.pathname + u.search; }),
          dom_nodes: document.getElementsByTagName('*').length,
        };
      });
      r.idle_cpu_ms = (c1 - c0) * 1000;
      r.cpu_to_data_ms = c0 * 1000;
      runs.push(r);
      console.log(`# ${name} run ${rep + 1}: fcp ${Math.round(r.fcp_ms)} ms, data ${Math.round(r.data_ms)} ms ` +
        `(API done ${Math.round(r.api_done_ms)} ms, tab CPU ${Math.round(r.cpu_to_data_ms)} ms), ` +
        `${r.api_requests} API requests (${r.api_transfer_bytes} B transferred, ${r.api_decoded_bytes} B decoded), ` +
        `JS+CSS ${r.js_css_bytes} B, idle CPU ${r.idle_cpu_ms.toFixed(1)} ms / ${IDLE_S} s`);
      await ctx.close();
    }
    const v = { path };
    for (const k of ['fcp_ms', 'data_ms', 'api_done_ms', 'cpu_to_data_ms', 'api_requests', 'api_transfer_bytes', 'api_decoded_bytes',
      'js_css_bytes', 'js_css_decoded_bytes', 'page_bytes', 'idle_cpu_ms', 'dom_nodes'])
      v[k] = Math.round(median(runs.map((r) => r[k])) * 10) / 10;
    v.data_ms_all = runs.map((r) => Math.round(r.data_ms));
    v.api_paths = runs[0].api_paths;
    out[name] = v;
  }
} finally {
  await browser.close();
}
// The same API requests again outside the browser, one after another (as
// bench/ui-buildbot.py times Buildbot's): the server's share, median of 3.
for (const v of Object.values(out)) {
  let ms = 0;
  for (const p of v.api_paths) {
    const ts = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const r = await fetch(`${BASE}${p}`, { headers: { Accept: 'application/json' } });
      await r.arrayBuffer();
      ts.push(performance.now() - t0);
    }
    ms += median(ts);
  }
  v.serial_ms = Math.round(ms * 10) / 10;
}
console.log(`ui-json ${JSON.stringify(out)}`);
