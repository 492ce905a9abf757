// Browser half of tests/e2e/t1045-ui-changes-schedulers.sh: the changes
// view (/changes, /changes/ID) and the schedulers view (/schedulers) of
// www/src/changes.js and schedulers.js in Debian's Chromium through
// playwright-core against a real master.  Prints "ok - ..." / "not ok - ..."
// lines and "# ..." diagnostics; every wait is bounded.
//
// Environment: URL, TRASH (screenshots), WWW (www/, for playwright-core),
// CHROMIUM, KILN (the kiln binary: sendchange).
import { execFileSync } from 'node:child_process';
import { BASE, TRASH, T, ok, step, expect, deadline, api, httpJson, launch, run } from './harness.mjs';

const { KILN } = process.env;
deadline(300);

function sendchange(...args) {
  execFileSync(KILN, ['sendchange', '--master', BASE, '--token', 'hooktoken', ...args],
    { env: { ...process.env, KILN_CLIENT_CONF: `${TRASH}/none.conf` } });
}

async function changeId(rev) {
  const { changes } = await api(`changes?revision=${rev}`);
  expect(changes.length === 1, `change ${rev}: ${changes.length} found`);
  return changes[0].changeid;
}

async function forceAlpha() {
  return httpJson('POST', 'forceschedulers/force',
    { jsonrpc: '2.0', id: 1, method: 'force', params: { builderNames: ['alpha'], reason: 'ui test' } });
}

const { browser, page, errors } = await launch({ width: 1100, height: 700 });
const rows = page.locator('table.changes-table tbody tr');
const cells = async (n) => rows.nth(n).locator('td').allTextContents();

await run(browser, async () => {
  const aaa = await changeId('aaa1110000');

  await step('/changes: newest first with revision, author, branch, repository, first comment line', async () => {
    const resp = await page.goto(`${BASE}/changes`);
    expect(resp.status() === 200, `GET /changes answered ${resp.status()}`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    await page.locator(`tr[data-change="${aaa}"]`).waitFor(T);
    const c = await cells(0);
    expect(c[0] === 'aaa1110000', `revision cell '${c[0]}'`);
    expect(c[1] === 'Ann Dev <ann@example.org>', `author cell '${c[1]}'`);
    expect(/ago$/.test(c[2]), `when cell '${c[2]}'`);
    expect(c[3] === 'main', `branch cell '${c[3]}'`);
    expect(c[5] === 'First change', `comments cell '${c[5]}' (first line only)`);
    expect(await rows.count() === 50, `${await rows.count()} rows on the first page`);
    const second = await cells(1);
    expect(second[0] === 'b000000051', `second row '${second[0]}'`);
  });
  await page.screenshot({ path: `${TRASH}/ui-changes.png`, fullPage: false });

  await step('paging: Older shows the rest, Newer comes back, the page is in the URL', async () => {
    await page.getByRole('link', { name: 'Older' }).click();
    await page.waitForURL(/\/changes\?page=1$/, T);
    await page.locator('tr[data-change]', { hasText: 'b000000002' }).waitFor(T);
    expect(await rows.count() === 2, `${await rows.count()} rows on page 2`); // 52 changes in all
    expect(await page.getByRole('link', { name: 'Older' }).count() === 0, 'an Older link on the last page');
    await page.reload();
    await page.locator('tr[data-change]', { hasText: 'b000000001' }).waitFor(T);
    await page.getByRole('link', { name: 'Newer' }).click();
    await page.locator(`tr[data-change="${aaa}"]`).waitFor(T);
  });

  await step('filters by author (substring) and branch live in the URL and survive a reload', async () => {
    await page.getByLabel('Author').fill('Ann');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/author=Ann/, T);
    await page.locator('tr[data-change]', { hasText: 'b000000051' }).waitFor({ state: 'detached', timeout: T.timeout });
    expect(await rows.count() === 1, `${await rows.count()} rows for author Ann`);
    await page.goto(`${BASE}/changes?branch=bulk`);
    await page.locator('tr[data-change]', { hasText: 'b000000051' }).waitFor(T);
    expect(await page.locator(`tr[data-change="${aaa}"]`).count() === 0, 'a main change under branch=bulk');
    await page.reload();
    await page.locator('tr[data-change]', { hasText: 'b000000051' }).waitFor(T);
    expect(await page.getByLabel('Branch').inputValue() === 'bulk', 'the branch box after a reload');
  });

  await step('a change sent while the list is open appears without a reload', async () => {
    await page.goto(`${BASE}/changes?branch=main`);
    await page.locator(`tr[data-change="${aaa}"]`).waitFor(T);
    sendchange('--branch', 'main', '--who', 'Bo Coder <bo@example.org>', '--revision', 'bbb2220000', '-c', 'Second change');
    const t0 = Date.now();
    await page.locator('tr[data-change]', { hasText: 'bbb2220000' }).waitFor(T);
    console.log(`# the change appeared ${Date.now() - t0} ms after sendchange returned`);
    expect((await cells(0))[0] === 'bbb2220000', 'the new change is not first');
  });

  await step('/changes/ID: files, whole comments, properties, revlink, its builds with results', async () => {
    await page.locator(`tr[data-change="${aaa}"] a`).first().click();
    await page.waitForURL(new RegExp(`/changes/${aaa}$`), T);
    const sec = page.locator(`section.change[data-change="${aaa}"]`);
    await sec.waitFor(T);
    await sec.locator('ul.files li', { hasText: 'src/a.c' }).waitFor(T);
    await sec.locator('ul.files li', { hasText: 'docs/a.md' }).waitFor(T);
    const comments = await sec.locator('pre.comments').textContent();
    expect(comments.includes('It has a body too.'), `comments '${comments}'`);
    const prop = await sec.locator('tr[data-prop="ticket"]').textContent();
    expect(prop.includes('KILN-7'), `ticket property '${prop}'`);
    const href = await sec.locator('a.revlink').getAttribute('href');
    expect(href === 'https://git.example.org/r/aaa1110000', `revlink '${href}'`);
    const alpha = sec.locator('table.change-builds tr', { hasText: 'alpha #1' });
    const beta = sec.locator('table.change-builds tr', { hasText: 'beta #1' });
    await alpha.locator('[data-result="success"]').waitFor(T);
    await beta.locator('[data-result="failure"]').waitFor(T);
    const link = await alpha.locator('a').getAttribute('href');
    expect(link === '/builders/alpha/builds/1', `build link '${link}'`);
  });
  await page.screenshot({ path: `${TRASH}/ui-change.png`, fullPage: true });

  await step('the new change\'s page shows its builds as they run and finish, without a reload', async () => {
    const bbb = await changeId('bbb2220000');
    await page.goto(`${BASE}/changes/${bbb}`);
    const sec = page.locator(`section.change[data-change="${bbb}"]`);
    await sec.locator('table.change-builds tr', { hasText: 'alpha #2' }).locator('[data-result="success"]')
      .waitFor({ timeout: 60000 });
    await sec.locator('table.change-builds tr', { hasText: 'beta #2' }).locator('[data-result="failure"]')
      .waitFor({ timeout: 60000 });
  });

  await step('/schedulers: each scheduler with its kind, builders and enabled state', async () => {
    await page.goto(`${BASE}/schedulers`);
    const row = (n) => page.locator(`tr[data-scheduler="${n}"]`);
    await row('main').waitFor(T);
    const main = await row('main').locator('td').allTextContents();
    expect(main[1] === 'single_branch', `main kind '${main[1]}'`);
    expect(main[2].includes('alpha') && main[2].includes('beta'), `main builders '${main[2]}'`);
    expect(main[3] === 'yes', `main enabled '${main[3]}'`);
    expect((await row('nightly').locator('td').nth(1).textContent()) === 'nightly', 'nightly kind');
    const flink = await row('force').locator('a').first().getAttribute('href');
    expect(flink === '/force/force', `the force scheduler's link '${flink}'`);
  });
  await page.screenshot({ path: `${TRASH}/ui-schedulers.png`, fullPage: true });

  await step('Disable stops the force scheduler (a force call fails), a reload keeps it, Enable restores it', async () => {
    const row = page.locator('tr[data-scheduler="force"]');
    await row.getByRole('button', { name: 'disable force' }).click();
    await row.locator('td[data-enabled="no"]').waitFor(T);
    const [s] = (await api('schedulers/force')).schedulers;
    expect(s.enabled === false, `the API says ${JSON.stringify(s)}`);
    const r = await forceAlpha();
    expect(r.status === 400 && /disabled/.test(r.json?.error?.message), `force while disabled: ${r.status} ${JSON.stringify(r.json)}`);
    await page.reload();
    await row.locator('td[data-enabled="no"]').waitFor(T);
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: `${TRASH}/ui-schedulers-dark.png`, fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    await row.getByRole('button', { name: 'enable force' }).click();
    await row.locator('td[data-enabled="yes"]').waitFor(T);
    const r2 = await forceAlpha();
    expect(r2.status === 200, `force once enabled: ${r2.status} ${JSON.stringify(r2.json)}`);
  });

  await step('a phone\'s width: revision, author, when and comments fit, branch and repository are hidden', async () => {
    await page.setViewportSize({ width: 390, height: 800 });
    await page.goto(`${BASE}/changes`);
    await rows.first().waitFor(T);
    const last = await rows.first().locator('td').last().boundingBox();
    expect(last && last.x + last.width <= 390, `the comments cell ends at ${last && last.x + last.width} px`);
    expect(!(await rows.first().locator('td').nth(4).isVisible()), 'the repository column is shown');
    await page.screenshot({ path: `${TRASH}/ui-changes-phone.png`, fullPage: false });
  });

  await step('the header links to both views', async () => {
    expect(await page.locator('header nav a[href="/changes"]').count() === 1, 'no Changes link');
    expect(await page.locator('header nav a[href="/schedulers"]').count() === 1, 'no Schedulers link');
  });
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);
});
