// End to end: a real engine, a real browser. Every page is screenshotted into test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEngine, openPage, shot, docShot, DOCS_SHOTS, DESKTOP, VIEWPORT } from './harness.mjs';

let e, ctx, page, pageErrors;
const APP = 'e2e_app';

before(async () => {
  e = await startEngine();
  ({ ctx, page, errors: pageErrors } = await openPage());
});

after(async () => {
  await ctx?.close();
  await e?.stop();
});

const row = (name) => page.locator(`tr[data-app="${name}"]`);

test('the printed link logs the browser in once, and the token stays out of reach', async () => {
  const resp = await page.goto(e.loginUrl);
  assert.ok(resp.ok());
  await page.locator('[data-testid="apps-table"]').waitFor();
  assert.equal(new URL(page.url()).pathname, '/', 'the code left the address bar');
  assert.equal(new URL(page.url()).search, '');
  // The page holds a panel session of its own, in its origin's storage; no cookie at all.
  const session = await page.evaluate(() => localStorage.getItem('hangar.session'));
  assert.match(session ?? '', /^[0-9a-f]{64}$/);
  const token = readFileSync(join(e.home, 'token'), 'utf8').trim();
  assert.notEqual(session, token, 'the page never holds the API token');
  const cookies = await ctx.cookies(`${e.base}/api/v1/apps`);
  assert.deepEqual(cookies.map((c) => c.name), [], 'the login set no cookie');
  // Cookies ignore ports: an app's port on 127.0.0.1 gets nothing of the login.
  const appCookies = await ctx.cookies(`http://127.0.0.1:${e.proxyPort}/api/v1/x.png`);
  assert.deepEqual(appCookies, []);
  // Single use.
  const code = new URL(e.loginUrl).searchParams.get('code');
  const again = await fetch(`${e.base}/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }) });
  assert.equal(again.status, 403);
  // The empty state leads to "New sub-app".
  await page.locator('[data-testid="empty-state"]').waitFor();
  await row('main').waitFor();
  await shot(page, 'apps-empty');
});

test('a browser without a session is told how to log in, and a used link says so', async () => {
  const r = await fetch(`${e.base}/api/v1/apps`);
  assert.equal(r.status, 401);
  const p2 = await ctx.newPage();
  await p2.goto(`${e.base}/`);
  const kept = await p2.evaluate(() => localStorage.getItem('hangar.session'));
  await p2.evaluate(() => localStorage.removeItem('hangar.session'));
  await p2.reload();
  await p2.getByText('Log in to Hangar').waitFor();
  await shot(p2, 'login-needed');
  // A used link: the page says why it did not log in.
  await p2.goto(e.loginUrl);
  await p2.locator('[data-testid="login-error"]').waitFor();
  assert.match(await p2.locator('[data-testid="login-error"]').innerText(), /already used/);
  await p2.close();
  // `hangar open` mints a fresh one-time link.
  const open = e.cli('open', '--no-browser');
  assert.equal(open.code, 0, open.stderr);
  const link = open.stdout.trim();
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/login\?code=[0-9a-f]{32}$/);
  await page.goto(link);
  await page.locator('[data-testid="apps-table"]').waitFor();
  const fresh = await page.evaluate(() => localStorage.getItem('hangar.session'));
  assert.ok(fresh && fresh !== kept, 'a new session');
});

test('create an app through the form; refusals appear beside their field', async () => {
  // An app to collide with.
  const taken = e.cli('create', 'e2e_taken');
  assert.equal(taken.code, 0, taken.stderr);
  await page.getByTestId('new-app').click();
  const name = page.locator('#f-name');
  await name.waitFor();
  assert.match(await name.inputValue(), /^a_[a-z0-9]{6}$/, 'a generated name');
  const msg = page.getByTestId('name-message');
  // Refused by the rule, as you type.
  await name.fill('Shop');
  await assert.doesNotReject(msg.filter({ hasText: 'does not start with a lowercase letter' }).waitFor());
  assert.equal(await page.getByTestId('submit').isDisabled(), true);
  await shot(page, 'form-refused-name');
  // Refused by the engine: the name is taken.
  await name.fill('e2e_taken');
  await msg.filter({ hasText: 'already exists' }).waitFor();
  // Refused by the engine on submit: the proxy's port.
  await name.fill(APP);
  await msg.filter({ hasText: 'Available' }).waitFor();
  await page.locator('#f-display').fill('E2E shop');
  await page.getByLabel('With main').check();
  await page.locator('#f-port').fill(String(e.proxyPort));
  await page.getByLabel('Pin to the menu').check();
  await page.getByRole('button', { name: 'Add a variable' }).click();
  await page.getByLabel('Variable name 1').fill('GREETING');
  await page.getByLabel('Value of variable 1').fill('hello');
  await page.getByTestId('submit').click();
  const portMsg = page.getByTestId('port-message');
  await portMsg.filter({ hasText: String(e.proxyPort) }).waitFor();
  assert.equal(await page.locator('#f-port').getAttribute('aria-invalid'), 'true');
  await shot(page, 'form-refused-port');
  // A memory limit below the smallest is the engine's refusal, beside its field; a nice value
  // that is not a number is refused before anything is sent.
  await page.locator('#f-port').fill('');
  await page.locator('#f-nice').fill('high');
  await page.getByTestId('submit').click();
  await page.getByTestId('nice-message').filter({ hasText: 'from -20' }).waitFor();
  assert.equal(await page.locator('#f-nice').getAttribute('aria-invalid'), 'true');
  await page.locator('#f-nice').fill('7');
  await page.locator('#f-memory').fill('3M');
  await page.getByTestId('submit').click();
  await page.getByTestId('memory-message').filter({ hasText: 'below the smallest limit' }).waitFor();
  assert.equal(await page.locator('#f-memory').getAttribute('aria-invalid'), 'true');
  assert.equal(e.cli('status', APP).code, 1, 'a refused create stores nothing');
  await page.locator('#f-memory').fill('300M');
  // Fix it and create. The create's answer (the app as it was then: not yet running) is held
  // back until the event stream has said it runs, as a slow network or a busy machine can do:
  // the late answer must not turn the row back.
  let heldBack = false;
  await page.route('**/api/v1/apps', async (route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    const answer = await route.fetch();
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      const st = e.cli('status', APP, '--json');
      if (st.code === 0 && JSON.parse(st.stdout).status === 'running') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 1000)); // the event stream's news reaches the page
    heldBack = true;
    await route.fulfill({ response: answer });
  });
  await page.locator('#f-port').fill('');
  await page.getByTestId('submit').click();
  await row(APP).waitFor();
  assert.equal(new URL(page.url()).hash, '#/');
  assert.ok(heldBack, 'the answer was held until the app ran');
  await page.unroute('**/api/v1/apps');
});

test('the new app starts, its CPU and memory appear live, and it is pinned in the top bar', async () => {
  await row(APP).locator('[data-status="running"]').waitFor({ timeout: 60000 });
  // CPU and memory figures arrive without a reload.
  await page.waitForFunction((n) => {
    const r = document.querySelector(`tr[data-app="${n}"]`);
    return r && /\d/.test(r.querySelector('[data-testid="cpu"]').textContent) && /MiB|KiB|GiB/.test(r.querySelector('[data-testid="mem"]').textContent);
  }, APP, { timeout: 30000 });
  await page.locator('nav[aria-label="Pinned apps"]').getByText('E2E shop').waitFor();
  // Its own origin is the link to open: every app under /_app/ shares one origin (cookies,
  // storage) with the others. The table shows that one URL; the app's page lists /_app/NAME/ too.
  const own = `http://${APP}.localhost:${e.proxyPort}/`;
  assert.equal(await row(APP).getByRole('link', { name: `Open ${APP} in the browser` }).getAttribute('href'), own);
  assert.deepEqual(await row(APP).locator('td.c-urls a').evaluateAll((as) => as.map((a) => a.href)), [own]);
  const visit = await ctx.newPage();
  const answer = await visit.goto(own);
  assert.ok(answer.ok(), `${own} answered ${answer.status()}`);
  await visit.close();
  await shot(page, 'apps');
  await page.emulateMedia({ colorScheme: 'dark' });
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(21, 24, 29)', 'dark follows the system');
  await shot(page, 'apps-dark');
  await page.emulateMedia({ colorScheme: 'light' });
  const v = JSON.parse(e.cli('status', APP, '--json').stdout);
  assert.equal(v.pinned, true);
  assert.equal(v.display_name, 'E2E shop');
});

test('the detail page shows live charts and the app’s figures', async () => {
  await row(APP).getByRole('link', { name: 'E2E shop' }).click();
  await page.getByRole('heading', { name: 'E2E shop' }).waitFor();
  await page.waitForFunction(() => /MiB|KiB/.test(document.querySelector('[data-testid="detail-mem"]')?.textContent ?? ''));
  assert.equal(await page.locator('.chart canvas').count(), 2, 'two uPlot charts');
  assert.deepEqual(await page.locator('dd.urls a').evaluateAll((as) => as.map((a) => a.href)),
    [`http://${APP}.localhost:${e.proxyPort}/`, `http://127.0.0.1:${e.proxyPort}/_app/${APP}/`]);
  // The limit and the priority the form gave it.
  assert.match(await page.getByTestId('detail-memory-max').textContent(), /^300 MiB/);
  assert.equal(await page.getByTestId('detail-nice').textContent(), '7');
  // Uptime counts on with the live samples (no event comes while the app just runs).
  const uptime = () => page.locator('[data-testid="detail-uptime"]').textContent();
  const before = await uptime();
  await page.waitForTimeout(2500); // a few samples on the chart
  assert.notEqual(await uptime(), before, `uptime stood still at ${before}`);
  await shot(page, 'detail');
  if (DOCS_SHOTS) {
    // For the documentation's picture only: 40 s of varying work, so the charts have a shape.
    const at = `http://127.0.0.1:${e.proxyPort}/_app/${APP}`;
    for (let i = 0; i < 20; i++) {
      await fetch(`${at}/api/burn?ms=${200 + ((i * 137) % 700)}`);
      if (i % 5 === 2) await fetch(`${at}/api/hold?mb=6`);
      await new Promise((r) => setTimeout(r, 1500));
    }
    await page.setViewportSize(DESKTOP);
    await page.waitForTimeout(500); // the charts follow their width
    await docShot(page, 'app-detail');
    await page.setViewportSize(VIEWPORT);
  }
});

test('edit changes the display name, and the list follows', async () => {
  await page.goto(`${e.base}/#/apps/${APP}/edit`);
  const display = page.locator('#f-display');
  await display.waitFor();
  await page.waitForFunction(() => document.querySelector('#f-display')?.value === 'E2E shop');
  assert.equal(await page.locator('#f-memory').inputValue(), '300M', 'the stored limit, as it is typed');
  assert.equal(await page.locator('#f-nice').inputValue(), '7');
  await shot(page, 'edit');
  const pid = JSON.parse(e.cli('status', APP, '--json').stdout).pid;
  await display.fill('E2E store');
  await page.locator('#f-memory').fill('512M');
  await page.locator('#f-nice').fill('3');
  await page.getByTestId('submit').click();
  await page.getByRole('heading', { name: 'E2E store' }).waitFor();
  const after = JSON.parse(e.cli('status', APP, '--json').stdout);
  assert.equal(after.memory_max, 512 * 2 ** 20);
  assert.equal(after.nice, 3);
  assert.equal(after.pid, pid, 'a new limit and priority need no restart');
  // The running process has the new priority at once (field 19 of its stat).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  assert.equal(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16], '3');
});

test('the log viewer shows a request to the app as it happens, and finds it', async () => {
  await page.goto(`${e.base}/#/logs/${APP}`);
  await page.getByTestId('log-conn').filter({ hasText: 'following' }).waitFor();
  const marker = `e2e-marker-${Date.now()}`;
  const r = await fetch(`http://127.0.0.1:${e.proxyPort}/_app/${APP}/${marker}`);
  assert.ok(r.status > 0);
  const lines = page.getByTestId('log-lines');
  await lines.getByText(marker).waitFor({ timeout: 10000 });
  // Search highlights it; next/previous step to it.
  await page.getByTestId('search').fill(marker);
  await page.getByTestId('match-count').filter({ hasText: '1 match' }).waitFor();
  await page.getByTestId('next').click();
  await page.getByTestId('match-count').filter({ hasText: '1 of 1' }).waitFor();
  assert.ok((await lines.locator('mark').count()) >= 1, 'the match is highlighted');
  // Hiding stdout hides it (the demo app logs requests on stdout).
  await page.getByTestId('show-out').uncheck();
  await page.getByTestId('match-count').filter({ hasText: '0 matches' }).waitFor();
  await page.getByTestId('show-out').check();
  await page.getByTestId('search').fill('');
  await shot(page, 'logs');
  await page.getByTestId('search').blur();
  if (DOCS_SHOTS) {
    await page.setViewportSize(DESKTOP);
    await docShot(page, 'log-viewer');
    await page.setViewportSize(VIEWPORT);
  }
  // Pause holds new lines back; resume shows them.
  await page.getByTestId('pause').click();
  const held = `e2e-held-${Date.now()}`;
  await fetch(`http://127.0.0.1:${e.proxyPort}/_app/${APP}/${held}`);
  await page.getByTestId('pause').filter({ hasText: /Resume \(\d+ new\)/ }).waitFor();
  assert.equal(await lines.getByText(held).count(), 0);
  await page.getByTestId('pause').click();
  await lines.getByText(held).waitFor();
});

test('stop it from the list', async () => {
  await page.goto(`${e.base}/#/`);
  await row(APP).getByRole('button', { name: `Stop ${APP}` }).click();
  await row(APP).locator('[data-status="stopped"]').waitFor({ timeout: 30000 });
  assert.equal(JSON.parse(e.cli('status', APP, '--json').stdout).status, 'stopped');
  // Stopped by the operator: plainly stopped (a visit does not wake it), where an on-visit app
  // that waits for its first visit is asleep.
  assert.equal((await row(APP).locator('[data-status="stopped"]').textContent()).trim(), 'Stopped');
  assert.equal((await row('e2e_taken').locator('[data-status="stopped"]').textContent()).trim(), 'Asleep');
});

test('back it up from its page, and restore the backup beside it under a new name', async () => {
  const COPY = 'e2e_copy';
  await page.goto(`${e.base}/#/apps/${APP}`);
  const panel = page.getByTestId('backups');
  await panel.waitFor();
  await panel.getByTestId('backup-now').click();
  await panel.getByTestId('backup-done').waitFor({ timeout: 30000 });
  assert.match(await panel.getByTestId('backup-done').textContent(), new RegExp(`^Backed up to ${APP}\\.`));
  const listed = JSON.parse(e.cli('backups', APP, '--json').stdout);
  assert.equal(listed.length, 1, 'the CLI sees the same archive');
  await panel.locator(`tr[data-backup="${listed[0].name}"]`).waitFor();
  await shot(page, 'backups');
  await panel.getByTestId('restore-as').first().click();
  const dialog = page.getByTestId('restore-dialog');
  await dialog.getByTestId('restore-name').fill('Bad name');
  assert.equal(await dialog.getByTestId('confirm-restore').isDisabled(), true, 'the name rule holds');
  await dialog.getByTestId('restore-name').fill(COPY);
  await shot(page, 'restore-dialog');
  await dialog.getByTestId('confirm-restore').click();
  // It lands on the copy's own page; the copy is an app of its own.
  await page.waitForFunction((n) => location.hash === `#/apps/${n}`, COPY, { timeout: 30000 });
  await page.locator('.mono', { hasText: COPY }).first().waitFor();
  const copy = JSON.parse(e.cli('status', COPY, '--json').stdout);
  const orig = JSON.parse(e.cli('status', APP, '--json').stdout);
  assert.notEqual(copy.port, orig.port);
  assert.notEqual(copy.db, orig.db);
  assert.ok(existsSync(join(e.home, 'apps', COPY)), 'its own data folder');
  await page.goto(`${e.base}/#/`);
  await row(COPY).waitFor();
  await row(APP).waitFor();
});

test('delete it with its database: the name must be typed, and the dialog says what was dropped', async () => {
  const dataDir = join(e.home, 'apps', APP);
  assert.ok(existsSync(dataDir), 'the app has a data folder');
  await row(APP).getByRole('button', { name: `More actions for ${APP}` }).click();
  await page.getByRole('menu', { name: `More actions for ${APP}` }).getByRole('menuitem', { name: 'Delete…' }).click();
  const dialog = page.getByTestId('delete-dialog');
  await dialog.waitFor();
  await dialog.getByTestId('drop-db').check();
  const confirm = dialog.getByTestId('confirm-delete');
  assert.equal(await confirm.isDisabled(), true, 'not before the name is typed');
  await dialog.getByTestId('confirm-name').fill('e2e_ap');
  assert.equal(await confirm.isDisabled(), true);
  await dialog.getByTestId('confirm-name').fill(APP);
  await shot(page, 'delete-dialog');
  await confirm.click();
  await dialog.getByTestId('dropped').waitFor();
  const dropped = await dialog.getByTestId('dropped').textContent();
  assert.match(dropped, /SQLite database/);
  assert.match(dropped, /data folder/);
  await shot(page, 'delete-done');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await row(APP).waitFor({ state: 'detached' });
  assert.equal(existsSync(dataDir), false, 'its data folder is gone');
  const list = JSON.parse(e.cli('list', '--json').stdout);
  assert.equal(list.some((a) => a.name === APP), false);
});

test('an app made while the page reads the list appears all the same', async () => {
  // The page's first list is held back until an app made meanwhile (by the CLI) has been
  // announced on the event stream: the older list must not hide it.
  let held = false;
  await page.route('**/api/v1/apps', async (route) => {
    if (route.request().method() !== 'GET' || held) return route.fallback();
    held = true;
    const answer = await route.fetch();
    const made = e.cli('create', 'e2e_late');
    assert.equal(made.code, 0, made.stderr);
    await new Promise((r) => setTimeout(r, 1000)); // the event stream's news reaches the page
    await route.fulfill({ response: answer });
  });
  await page.goto(page.url().replace(/#.*$/, '#/'));
  await page.reload();
  await row('e2e_late').waitFor({ timeout: 30000 });
  assert.ok(held, 'the list was held back');
  await page.unroute('**/api/v1/apps');
  const gone = e.cli('delete', 'e2e_late');
  assert.equal(gone.code, 0, gone.stderr);
});

test('the UI is served with the right types, an SPA fallback and no way out of its folder', async () => {
  const idx = await fetch(`${e.base}/logs/${APP}`);
  assert.equal(idx.status, 200);
  assert.match(idx.headers.get('content-type'), /text\/html/);
  const html = await idx.text();
  const js = html.match(/src="([^"]+\.js)"/)[1];
  const asset = await fetch(new URL(js, e.base));
  assert.match(asset.headers.get('content-type'), /javascript/);
  assert.equal((await fetch(`${e.base}/assets/nope.js`)).status, 404);
  assert.equal((await fetch(`${e.base}/api/v1/no-such-route`)).status, 404);
  for (const p of ['/%2e%2e/%2e%2e/etc/passwd', '/assets/..%2f..%2f..%2fetc%2fpasswd']) {
    const t = await (await fetch(`${e.base}${p}`)).text();
    assert.doesNotMatch(t, /root:/, p);
  }
  // The path form of a route opens the same page.
  await page.goto(`${e.base}/logs/main`);
  await page.getByTestId('log-conn').waitFor();
  assert.equal(new URL(page.url()).hash, '#/logs/main');
});

test('the proxy never hands the token cookie to an app', async () => {
  const r = await fetch(`http://127.0.0.1:${e.proxyPort}/api/headers`, { headers: { Cookie: 'a=1; hangar_token=not-for-apps; b=2' } });
  assert.equal(r.status, 200);
  const body = await r.text();
  assert.match(body, /a=1/);
  assert.doesNotMatch(body, /not-for-apps/);
});

test('no script error on any page', () => {
  assert.deepEqual(pageErrors, []);
});
