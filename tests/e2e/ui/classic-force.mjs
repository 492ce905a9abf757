// Browser half of tests/e2e/t1031-ui-force-form.sh: the force forms in
// Debian's Chromium (playwright-core) against a real master.  Prints
// "ok - ..." / "not ok - ..." lines and "# ..." diagnostics; every wait is a
// bounded playwright wait on the page.
//
// Environment: URL (the master), TRASH (gates, screenshots), WWW (www/, for
// playwright-core), CHROMIUM (the browser).
import { writeFileSync } from 'node:fs';
import { BASE, TRASH, T, ok, step, expect, deadline, launch, run } from './harness.mjs';

deadline(180);

// the browser itself logs every non-2xx answer ("Failed to load resource"):
// the refused force calls are expected, anything else is an error
const { browser, page, errors } = await launch({ width: 900, height: 900 }, /status of 400 \(Bad Request\)/);

const field = (name) => page.locator(`.force .field[data-field="${name}"]`);
await run(browser, async () => {
  await step('/force lists both force schedulers with links to their forms', async () => {
    const resp = await page.goto(`${BASE}/force`);
    expect(resp.status() === 200, `GET /force answered ${resp.status()}`);
    await page.locator('.force-list li[data-scheduler="release"] a[href="/force/release"]').waitFor(T);
    await page.locator('.force-list li[data-scheduler="quick"] a[href="/force/quick"]').waitFor(T);
  });
  await step('following the link opens the form without a reload', async () => {
    await page.evaluate(() => { window.__noReload = 1; });
    await page.locator('a[href="/force/release"]').click();
    await page.locator('form.force[data-scheduler="release"]').waitFor(T);
    expect(await page.evaluate(() => window.__noReload === 1), 'reloaded');
  });
  await step('/force/release?builder=hello: fields from the typed parameters, only hello checked', async () => {
    await page.goto(`${BASE}/force/release?builder=hello`);
    await page.locator('form.force[data-scheduler="release"]').waitFor(T);
    expect(await field('jobs').locator('input[type="number"]').inputValue() === '4', 'jobs default');
    expect(await field('note').locator('.req').count() === 1, 'note not marked required');
    const opts = await field('flavour').locator('option').allTextContents();
    expect(opts.join(',') === 'full,minimal', `flavour choices ${opts}`);
    expect(await field('sign').locator('input[type="checkbox"]').isChecked(), 'sign default');
    expect(await field('reason').locator('input').inputValue() === 'force build', 'reason default');
    expect(await page.locator('input[name="builder"][value="hello"]').isChecked(), 'hello unchecked');
    expect(!(await page.locator('input[name="builder"][value="other"]').isChecked()), 'other checked');
  });
  await step('a bad int shows the server\'s message next to its field', async () => {
    await field('jobs').locator('input').fill('99');
    await field('note').locator('input').fill('x');
    await page.locator('form.force button[type="submit"]').click();
    const err = field('jobs').locator('.field-error');
    await err.waitFor(T);
    const text = await err.textContent();
    expect(text === "'Jobs' must be between 1 and 64", `message ${text}`);
    expect(await field('jobs').locator('input[aria-invalid="true"]').count() === 1, 'not marked invalid');
    expect(await field('note').locator('.field-error').count() === 0, 'note marked too');
    expect(new URL(page.url()).pathname === '/force/release', `left the form: ${page.url()}`);
  });
  await page.screenshot({ path: `${TRASH}/force-form-errors.png`, fullPage: true });
  await step('an empty required field: its message moves to that field', async () => {
    await field('jobs').locator('input').fill('8');
    await field('note').locator('input').fill('');
    await page.locator('form.force button[type="submit"]').click();
    await field('note').locator('.field-error', { hasText: "'note' needs a value" }).waitFor(T);
    expect(await field('jobs').locator('.field-error').count() === 0, 'the old jobs error stayed');
  });
  await step('a good form starts the build and goes to its builder, where it shows running', async () => {
    await page.evaluate(() => { window.__noReload = 1; });
    await field('note').locator('input').fill('ship it');
    await field('flavour').locator('select').selectOption('minimal');
    await field('sign').locator('input').uncheck();
    await field('username').locator('input').fill('Fay');
    await page.locator('form.force button[type="submit"]').click();
    await page.waitForURL(/\/builders\/hello\?forced=\d+$/, T);
    await page.locator('tr[data-build="1"] .r-running').waitFor(T);
  });
  await page.screenshot({ path: `${TRASH}/force-running.png`, fullPage: true });
  await step('... and finished, without a reload', async () => {
    writeFileSync(`${TRASH}/gate-1`, '');
    await page.locator('tr[data-build="1"] [data-result="success"]').waitFor(T);
    expect(await page.evaluate(() => window.__noReload === 1), 'reloaded');
  });
  await step('a builder the scheduler does not force is refused on the page', async () => {
    await page.goto(`${BASE}/force/quick?builder=hello`);
    await page.locator('.force-page .error', { hasText: 'hello' }).waitFor(T);
    expect(await page.locator('form.force').count() === 0, 'a form for it');
  });
  await step('/force?builder=other lists the two schedulers that force it, linked for it', async () => {
    await page.goto(`${BASE}/force?builder=other`);
    await page.locator('.force-list li[data-scheduler="quick"] a[href="/force/quick?builder=other"]').waitFor(T);
    await page.locator('.force-list li[data-scheduler="release"] a[href="/force/release?builder=other"]').waitFor(T);
  });
  await step('/force?builder=hello is the form of the only scheduler that forces it', async () => {
    await page.goto(`${BASE}/force?builder=hello`);
    await page.locator('form.force[data-scheduler="release"]').waitFor(T);
    expect(await page.locator('input[name="builder"][value="hello"]').isChecked(), 'hello unchecked');
    expect(!(await page.locator('input[name="builder"][value="other"]').isChecked()), 'other checked');
  });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${BASE}/force/release`);
  await page.locator('form.force').waitFor(T);
  await page.screenshot({ path: `${TRASH}/force-form-dark.png`, fullPage: true });
  ok(errors.length === 0, `no console errors (${errors.length}: ${errors.slice(0, 3).join(' | ')})`);
});
