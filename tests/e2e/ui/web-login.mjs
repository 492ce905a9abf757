// Browser half of tests/e2e/t1252-ui-login.sh (slice "weblogin"): log in
// through the header's form, force a build, log out; then the force button
// is gone and a force from the page is refused.  Prints "ok - ..." /
// "not ok - ..." lines; every wait is a bounded playwright wait.
//
// Environment: URL (the master), TRASH (screenshots), WWW, CHROMIUM.
import { BASE, TRASH, T, step, expect, deadline, launch, run, api } from './harness.mjs';

deadline(180);

// the refused calls the test makes on purpose (401) are expected in the console
const { browser, page, errors } = await launch({ width: 1000, height: 800 }, /status of 401/);
const submitBtn = () => page.locator('form.force button[type="submit"]');
const buildsets = async () => (await api('buildsets')).meta.total;

await run(browser, async () => {
  await step('anonymously the header offers "Log in" and the force button is hidden', async () => {
    await page.goto(`${BASE}/force/force?builder=hello`);
    await page.locator('form.force').waitFor(T);
    await page.locator('header .auth', { hasText: 'Log in' }).waitFor(T);
    await page.waitForFunction(() => document.body.classList.contains('no-force'), null, T);
    expect(!(await submitBtn().isVisible()), 'the force button is visible');
  });
  await step('"Log in" opens the form (a lazily loaded chunk)', async () => {
    await page.locator('header .auth').click();
    await page.locator('form.login').waitFor(T);
  });
  await step('a wrong password shows the server\'s message', async () => {
    await page.fill('form.login input[name="username"]', 'ann');
    await page.fill('form.login input[name="password"]', 'nope');
    await page.locator('form.login button[type="submit"]').click();
    await page.locator('form.login .error', { hasText: 'wrong username or password' }).waitFor(T);
  });
  await step('logging in reloads the page as ann: "Log out ann", the force button shown', async () => {
    await page.fill('form.login input[name="password"]', 'hp-pass');
    await Promise.all([page.waitForNavigation(T), page.locator('form.login button[type="submit"]').click()]);
    await page.locator('header .auth', { hasText: 'Log out ann' }).waitFor(T);
    await submitBtn().waitFor({ state: 'visible', ...T });
    const cookies = await page.context().cookies();
    const c = cookies.find((x) => x.name === 'kiln_session');
    expect(c && c.httpOnly && c.sameSite === 'Lax' && c.path === '/', `cookie ${JSON.stringify(c)}`);
    expect(await page.evaluate(() => document.cookie.includes('kiln_session')) === false, 'the cookie is readable by scripts');
  });
  await page.screenshot({ path: `${TRASH}/login-in.png` });
  await step('ann forces a build through the form (the call carries X-Kiln-CSRF)', async () => {
    const before = await buildsets();
    await submitBtn().click();
    const end = Date.now() + 20000;
    while ((await buildsets()) !== before + 1) {
      expect(Date.now() < end, 'no buildset was added');
      await page.waitForTimeout(100); // polling the API with a deadline
    }
  });
  await step('"Log out ann" logs out: "Log in" again, the force button gone', async () => {
    await Promise.all([page.waitForNavigation(T), page.locator('header .auth').click()]);
    await page.locator('header .auth', { hasText: 'Log in' }).waitFor(T);
    await page.goto(`${BASE}/force/force?builder=hello`); // the force had moved on to its build
    await page.locator('form.force').waitFor(T);
    await page.waitForFunction(() => document.body.classList.contains('no-force'), null, T);
    expect(!(await submitBtn().isVisible()), 'the force button is still visible');
  });
  await step('a force from the logged-out page is refused (401) and adds nothing', async () => {
    const before = await buildsets();
    const st = await page.evaluate(async () => (await fetch('/api/v2/forceschedulers/force', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'force', params: { builderNames: ['hello'] } }),
    })).status);
    expect(st === 401, `status ${st}`);
    expect((await buildsets()) === before, 'a buildset was added');
  });
  await page.screenshot({ path: `${TRASH}/login-out.png` });
  await step('no unexpected browser errors', async () => {
    expect(errors.length === 0, errors.join(' | '));
  });
});
