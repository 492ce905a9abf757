// Browser half of tests/e2e/t1060-ui-console-buildsets.sh (VIEW=console) and
// t1061-ui-grid-buildsets.sh (VIEW=grid): the cells of two changes with one
// revision on two branches, next to a build forced with no change, each in
// its own change's row (column), from one /changes/builds request; each
// change links to /changes/ID; a rebuild of a shown change appears live.
// Prints "ok - ..." / "not ok - ..." lines and "# ..." diagnostics; every
// wait is a bounded playwright wait on the page.
//
// Environment: URL (the master), TRASH (gates, screenshots), WWW, CHROMIUM,
// VIEW (console or grid), FORCED (the buildid of the build of no change),
// KILN (the kiln binary: sendchange).
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { BASE, TRASH, T, step, expect, ok, deadline, launch, run, api, httpJson } from './harness.mjs';

const VIEW = process.env.VIEW ?? 'console';
const FORCED = Number(process.env.FORCED);
deadline(180);

const { browser, page, errors } = await launch({ width: 1600, height: 1400 }); // all 33 builders in view
const cell = (change, builder) => page.locator(`.${VIEW} .cell[data-change="${change}"][data-builder="${builder}"]`);
const apiUrls = [];
page.on('request', (r) => r.url().includes('/api/v2/') && apiUrls.push(r.url().slice(r.url().indexOf('/api/v2/') + 8)));

await run(browser, async () => {
  const changes = (await api('changes?order=changeid')).changes;
  expect(changes.length === 2, `two changes, got ${changes.length}`);
  const [main, rel] = changes;
  expect(main.branch === 'main' && rel.branch === 'release' && main.revision === rel.revision,
    `two changes of one revision on main and release: ${JSON.stringify(changes.map((c) => [c.branch, c.revision]))}`);
  // what each cell must hold: the change's own build per builder, from the API
  const want = {};
  for (const c of changes) {
    want[c.changeid] = {};
    for (const b of (await api(`changes/${c.changeid}/builds`)).builds) {
      const name = (await api(`builders/${b.builderid}`)).builders[0].name;
      want[c.changeid][name] = b;
    }
  }

  await step(`the ${VIEW} shows each change's own result per builder`, async () => {
    await page.goto(`${BASE}/${VIEW}`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    await cell(rel.changeid, 'alpha').waitFor(T);
    for (const c of changes) {
      for (const [name, b] of Object.entries(want[c.changeid])) {
        const el = cell(c.changeid, name);
        const got = await el.getAttribute('data-buildid', T);
        expect(Number(got) === b.buildid, `${name} of change ${c.changeid} (${c.branch}) shows build ${got}, not ${b.buildid}`);
      }
    }
    await cell(main.changeid, 'alpha').and(page.locator('[data-state="success"]')).waitFor(T);
    await cell(rel.changeid, 'alpha').and(page.locator('[data-state="failure"]')).waitFor(T);
    await cell(main.changeid, 'beta').and(page.locator('[data-state="success"]')).waitFor(T);
    await cell(main.changeid, 'gamma').and(page.locator('[data-state="success"]')).waitFor(T);
    const n = await page.locator(`.${VIEW} .cell`).count();
    expect(n === 66, `${n} cells, not the 66 builds of the two changes`);
    expect(await page.locator(`.${VIEW} .cell[data-buildid="${FORCED}"]`).count() === 0,
      `the build forced with no change (${FORCED}) is in a change's cell`);
  });

  await step('the cells came in one /changes/builds request, the changes in one, no build list', async () => {
    const cells = apiUrls.filter((u) => u.startsWith('changes/builds?'));
    const lists = apiUrls.filter((u) => u.startsWith('changes?'));
    console.log(`# ${VIEW} load: ${apiUrls.length} API requests: ${apiUrls.join(' ')}`);
    expect(cells.length >= 1 && lists.length >= 1, `requests: ${apiUrls.join(' ')}`);
    // a load (the first, then the one after /ws is subscribed) reads the cells once
    expect(cells.length === lists.length, `${cells.length} cell requests for ${lists.length} loads`);
    expect(!apiUrls.some((u) => u.startsWith('builds?')), `a builds list was read: ${apiUrls.join(' ')}`);
    expect(cells[0].includes(`changeid=${rel.changeid},${main.changeid}`), `cells of ${cells[0]}`);
  });

  await step('each change links to /changes/ID', async () => {
    const sel = VIEW === 'console'
      ? `.console .vrow[data-change="${rel.changeid}"] a[href="/changes/${rel.changeid}"]`
      : `.grid .colchange[href="/changes/${rel.changeid}"]`;
    await page.locator(sel).waitFor(T);
    expect(await page.locator(VIEW === 'console' ? '.console .vrow a.chg' : '.grid a.colchange').count() === 2,
      'not one link per change');
  });
  await page.screenshot({ path: `${TRASH}/${VIEW}-buildsets.png` });

  await step('a change built on 33 builders at once: its row and all its cells appear live, then finished', async () => {
    await page.evaluate(() => { window.__noReload = 1; });
    const before = apiUrls.length;
    execFileSync(process.env.KILN, ['sendchange', '--master', BASE, '--token', 'hooktoken', '--branch', 'main',
      '--who', 'Cy <cy@example.org>', '--revision', 'new00000', '-c', 'Third'],
    { env: { ...process.env, KILN_CLIENT_CONF: `${TRASH}/none.conf` } });
    const [c3] = (await api('changes?order=-changeid&limit=1')).changes;
    expect(c3.revision === 'new00000', `newest change ${c3.revision}`);
    const cells3 = page.locator(`.${VIEW} .cell[data-change="${c3.changeid}"]`);
    // gamma waits for its gate: the other 32 finish
    await page.waitForFunction(([v, id]) => document.querySelectorAll(
      `.${v} .cell[data-change="${id}"][data-state="success"]`).length === 32, [VIEW, c3.changeid], T);
    const g = cell(c3.changeid, 'gamma');
    await g.and(page.locator('[data-state="running"]')).waitFor(T);
    const [gb] = (await api(`changes/${c3.changeid}/builds?builderid=${(await api('builders/gamma')).builders[0].builderid}`)).builds;
    writeFileSync(`${TRASH}/gate-${gb.number}`, '');
    await g.and(page.locator(`[data-state="success"][data-buildid="${gb.buildid}"]`)).waitFor(T);
    expect(await cells3.count() === 33, `${await cells3.count()} cells for the third change`);
    const one = apiUrls.slice(before).filter((u) => /^builds\/\d+\/changes/.test(u)).length;
    const again = apiUrls.slice(before).filter((u) => u.startsWith('changes/builds?')).length;
    console.log(`# 33 new builds: ${one} /builds/N/changes and ${again} /changes/builds requests`);
    expect(await page.evaluate(() => window.__noReload === 1), 'the page was reloaded');
  });

  await step('a new build of a shown change appears running within 1 s, then finished, without a reload', async () => {
    const old = want[main.changeid].gamma.buildid;
    const r = await httpJson('POST', `builds/${old}`, { jsonrpc: '2.0', id: 1, method: 'rebuild', params: {} });
    expect(r.status === 200, `rebuild: ${r.status} ${JSON.stringify(r.json)}`);
    const t0 = Date.now();
    const brid = Object.values(r.json.result[1])[0];
    // the new build is gamma #3: it waits for gate-3
    const running = cell(main.changeid, 'gamma').and(page.locator('[data-state="running"]'));
    await running.waitFor(T);
    const ms = Date.now() - t0;
    console.log(`# the rebuild's cell appeared ${ms} ms after the rebuild call returned`);
    const [nb] = (await api(`buildrequests/${brid}/builds`)).builds;
    expect(nb && Number(await running.getAttribute('data-buildid')) === nb.buildid, `the running cell is not build ${nb?.buildid}`);
    expect(ms < 1000, `the new build appeared after ${ms} ms`);
    writeFileSync(`${TRASH}/gate-${nb.number}`, '');
    await cell(main.changeid, 'gamma').and(page.locator(`[data-state="success"][data-buildid="${nb.buildid}"]`)).waitFor(T);
    expect(await cell(rel.changeid, 'gamma').getAttribute('data-buildid') === String(want[rel.changeid].gamma.buildid),
      'the other change\'s gamma cell changed');
    expect(await page.evaluate(() => window.__noReload === 1), 'the page was reloaded');
  });

  ok(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(' | ')})`);
});
