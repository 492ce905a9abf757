// Browser half of tests/e2e/t1057-ui-notifications.sh: notifications for
// watched builders (www/src/notify.js) in Debian's Chromium through
// playwright-core against a real master.  window.Notification is replaced
// by a recording stub (addInitScript; its record is kept in sessionStorage,
// so it outlives reloads), so the test reads which notifications were
// shown.  Prints "ok - ..." / "not ok - ..." lines and "# ..."
// diagnostics; every wait is bounded.
//
// Environment: URL, TRASH (screenshots; the file "broken" makes the
// builders' step fail), WWW (www/, for playwright-core), CHROMIUM.
import { writeFileSync, rmSync } from 'node:fs';
import { BASE, TRASH, T, ok, step, expect, deadline, api, force, launch, run } from './harness.mjs';

deadline(240);

const { browser, page, errors } = await launch({ width: 1100, height: 700 });

// The recording stub: permission 'default' until requestPermission() (which
// grants it); every notification and every request is recorded.
function stub(initial) {
  let store = null;
  try {
    store = window.sessionStorage;
  } catch {
    return; // about:blank
  }
  const rec = JSON.parse(store.getItem('rec') || '{"notes":[],"asked":0}');
  const keep = () => store.setItem('rec', JSON.stringify(rec));
  window.__rec = rec;
  window.__shown = [];
  if (initial === 'missing') {
    delete window.Notification;
    return;
  }
  class Note {
    constructor(title, opts = {}) {
      this.title = title;
      this.onclick = null;
      rec.notes.push({ title, body: opts.body, tag: opts.tag });
      keep();
      window.__shown.push(this);
    }

    close() {
      this.closed = true;
    }

    static requestPermission() {
      rec.asked++;
      if (Note.permission === 'default') Note.permission = 'granted';
      store.setItem('perm', Note.permission);
      keep();
      return Promise.resolve(Note.permission);
    }
  }
  Note.permission = store.getItem('perm') || initial;
  window.Notification = Note;
}
await page.addInitScript(stub, 'default');

const rec = () => page.evaluate(() => window.__rec);
const titles = async () => (await rec()).notes.map((n) => n.title);
// waits (bounded) until the stub has recorded n notifications
const notes = (n) => page.waitForFunction((k) => window.__rec && window.__rec.notes.length >= k, n, T);

// waits (bounded: 60 s) for BUILDER's build NUMBER to finish; its results
async function finished(builder, number) {
  const end = Date.now() + 60000;
  for (;;) {
    const [b] = (await api(`builders/${builder}/builds?number=${number}`)).builds;
    if (b?.complete) return b.results;
    if (Date.now() > end) throw new Error(`${builder} build ${number} did not finish in 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
// waits (bounded) until the watcher has finished k catch-ups from the API
const synced = (p, k) => p.waitForFunction((n) => Number(document.querySelector('#watched')?.dataset.synced) >= n, k, T);
const row = (n, result) => page.locator(`tr[data-build="${n}"] [data-result="${result}"]`);
const broken = (yes) => (yes ? writeFileSync(`${TRASH}/broken`, '') : rmSync(`${TRASH}/broken`, { force: true }));

await run(browser, async () => {
  await force('flip');
  await force('other');
  await step('the builder page has a Watch button; the permission is not asked before a click', async () => {
    await page.goto(`${BASE}/builders/flip`);
    await page.locator('#conn[data-online="yes"]').waitFor(T);
    await row(1, 'success').waitFor(T);
    await page.locator('button.watch-toggle', { hasText: /^Watch$/ }).waitFor(T);
    expect((await rec()).asked === 0, 'requestPermission was called without a click');
    expect(await finished('other', 1) === 0, 'other #1 did not succeed');
  });
  await step('Watch asks for the permission once and shows "Watching" with the default mode', async () => {
    await page.locator('button.watch-toggle').click();
    await page.locator('.watch[data-watching="yes"] button[aria-pressed="true"]', { hasText: 'Watching' }).waitFor(T);
    await synced(page, 1); // its current state is learnt
    expect((await rec()).asked === 1, `asked ${(await rec()).asked} times`);
    expect(await page.locator('.watch select.watch-mode').inputValue() === 'changes', 'mode');
    expect(await page.locator('.watch-note').count() === 0, 'a permission note is shown though granted');
    expect((await rec()).notes.length === 0, 'a notification for the build before the watch');
  });
  await page.screenshot({ path: `${TRASH}/notify-builder.png`, fullPage: true });

  await step('success -> failure: "flip is broken (build 2)" without a reload', async () => {
    broken(true);
    await force('flip');
    await notes(1);
    const [n] = (await rec()).notes;
    expect(n.title === 'flip is broken (build 2)', `title '${n.title}'`);
    expect(n.body === "failure 'test ! ...' (failure)\nprevious build: success", `body '${n.body}'`);
    console.log(`# body: ${n.body}`);
    await row(2, 'failure').waitFor(T);
  });
  await step('an unwatched builder failing shows nothing', async () => {
    await force('other');
    expect(await finished('other', 2) === 2, 'other #2 did not fail');
  });
  await step('failure -> success: "flip is fixed (build 3)"', async () => {
    broken(false);
    await force('flip');
    await notes(2);
    const n = (await rec()).notes[1];
    expect(n.title === 'flip is fixed (build 3)', `title '${n.title}'`);
    expect(/\nprevious build: failure$/.test(n.body), `body '${n.body}'`);
    expect(n.tag === 'kiln-watch-flip', `tag '${n.tag}'`);
  });
  await step('success -> success in "state changes" mode shows nothing; "every build" shows the next', async () => {
    await force('flip');
    await row(4, 'success').waitFor(T);
    await page.locator('.watch select.watch-mode').selectOption('every');
    await force('flip');
    await notes(3);
    const t = await titles();
    expect(t.join(' | ') === 'flip is broken (build 2) | flip is fixed (build 3) | flip: success (build 5)',
      `notifications: ${t.join(' | ')}`);
  });
  await step('the header panel lists the watched builder with its mode', async () => {
    await page.locator('#watched summary').click();
    const li = page.locator('#watched li[data-watch="flip"]');
    await li.waitFor(T);
    expect(await li.locator('select').inputValue() === 'every', 'mode in the panel');
    expect((await page.locator('#watched summary').textContent()) === 'Watched (1)', 'summary');
  });
  await page.screenshot({ path: `${TRASH}/notify-panel.png` });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${TRASH}/notify-panel-dark.png` });
  await page.emulateMedia({ colorScheme: 'light' });

  await step('a build finished while no page was open is caught up once, from the API', async () => {
    await page.goto('about:blank');
    broken(true);
    await force('flip');
    expect(await finished('flip', 6) === 2, 'flip #6 did not fail');
    await page.goto(`${BASE}/`);
    await notes(4);
    await synced(page, 1);
    const t = await titles();
    expect(t.length === 4 && t[3] === 'flip is broken (build 6)', `notifications: ${t.join(' | ')}`);
  });
  await step('clicking the notification opens the build page', async () => {
    await page.evaluate(() => window.__shown.at(-1).onclick());
    await page.waitForURL(`${BASE}/builders/flip/builds/6`, T);
    await page.locator('[data-result="failure"]').first().waitFor(T);
    expect(await page.evaluate(() => window.__shown.at(-1).closed === true), 'the notification was not closed');
  });
  await step('a reload keeps the watch and its mode, and shows nothing twice', async () => {
    await page.goto(`${BASE}/builders/flip`);
    await synced(page, 1);
    await page.locator('.watch[data-watching="yes"]').waitFor(T);
    expect(await page.locator('.watch select.watch-mode').inputValue() === 'every', 'mode after the reload');
    await page.reload();
    await synced(page, 1);
    await page.locator('.watch[data-watching="yes"]').waitFor(T);
    expect((await rec()).notes.length === 4, `notifications: ${(await titles()).join(' | ')}`);
  });
  await step('after the reload a new build is announced (failure again, "every build")', async () => {
    await force('flip');
    await notes(5);
    const t = await titles();
    expect(t.length === 5 && t[4] === 'flip: failure (build 7)', `notifications: ${t.join(' | ')}`);
    broken(false);
  });
  await step('on a phone\'s width the open panel fits the screen', async () => {
    await page.setViewportSize({ width: 390, height: 700 });
    await page.locator('#watched summary').click();
    const box = await page.locator('#watched .watch-box').boundingBox();
    expect(box && box.x >= 0 && box.x + box.width <= 390, `panel at ${JSON.stringify(box)}`);
    await page.screenshot({ path: `${TRASH}/notify-phone.png` });
    await page.setViewportSize({ width: 1100, height: 700 });
  });
  await step('Unwatch in the panel empties the list (and the storage)', async () => {
    await page.getByRole('button', { name: 'unwatch flip' }).click();
    await page.locator('#watched', { hasText: 'No builder is watched' }).waitFor(T);
    await page.locator('.watch[data-watching="no"]').waitFor(T);
    const stored = await page.evaluate(() => localStorage.getItem('kiln.watch'));
    expect(stored === '{}', `stored ${stored}`);
  });
  ok((await rec()).asked === 1, 'the permission was asked once in all');
  ok(errors.length === 0, `no console errors (${errors.join(' | ')})`);

  // ---- the browser says no, or has no Notification API ----
  for (const [initial, text] of [['denied', 'blocked for this site'], ['missing', 'cannot show notifications']]) {
    const ctx = await browser.newContext({ viewport: { width: 900, height: 400 } });
    const p = await ctx.newPage();
    const errs = [];
    p.on('pageerror', (e) => errs.push(e.message));
    await p.addInitScript(stub, initial);
    await step(`a browser whose notifications are ${initial} says so plainly`, async () => {
      await p.goto(`${BASE}/builders/flip`);
      const note = p.locator(`.watch .watch-note[data-permission="${initial}"]`, { hasText: text });
      await note.waitFor(T);
      const button = p.locator('button.watch-toggle');
      expect(await button.isDisabled() === (initial === 'missing'), 'the button is (not) disabled');
      expect(errs.length === 0, errs.join(' | '));
    });
    if (initial === 'denied') await p.screenshot({ path: `${TRASH}/notify-denied.png` });
    await ctx.close();
  }

  // ---- the real API, permission granted by the browser context ----
  await step('with the real Notification API and the permission granted, Watch shows no warning; revoked, it says so', async () => {
    const ctx = await browser.newContext();
    await ctx.grantPermissions(['notifications'], { origin: BASE });
    const p = await ctx.newPage();
    await p.goto(`${BASE}/builders/flip`);
    expect(await p.evaluate(() => Notification.permission) === 'granted', 'permission');
    await p.locator('button.watch-toggle').click();
    await p.locator('.watch[data-watching="yes"]').waitFor(T);
    await synced(p, 1);
    expect(await p.locator('.watch-note').count() === 0, 'a warning is shown');
    await ctx.clearPermissions(); // as if revoked in the site settings: said at once
    await p.locator('.watch .watch-note[data-permission="default"]', { hasText: 'not allowed yet' }).waitFor(T);
    await ctx.close();
  });
});
