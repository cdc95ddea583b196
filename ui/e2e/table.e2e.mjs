// End to end at many apps: 52 registered sub-apps (plus main) in a real engine, the panel in a
// real Chromium: filter by text and status, sort by a column both ways, select rows and start
// and stop them in bulk (one API call per app, each row's outcome shown), and a reload that
// keeps the filter and the sort (they live in the URL).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEngine, openPage, shot, docShot, DOCS_SHOTS, DESKTOP, VIEWPORT } from './harness.mjs';

let e, ctx, page, pageErrors;

// 6 shops, 10 blogs, 36 services: 52 sub-apps.
const SHOPS = Array.from({ length: 6 }, (_, i) => `shop_${i}`);
const BLOGS = Array.from({ length: 10 }, (_, i) => `blog_${i}`);
const SVCS = Array.from({ length: 36 }, (_, i) => `svc_${String(i).padStart(2, '0')}`);
const ALL = [...SHOPS, ...BLOGS, ...SVCS];

before(async () => {
  e = await startEngine();
  // Four creates at a time through the real CLI.
  let next = 0;
  const worker = async () => {
    while (next < ALL.length) {
      const name = ALL[next++];
      const display = name.replace(/^(\w+)_(\d+)$/, (_, k, n) => `${k[0].toUpperCase()}${k.slice(1)} ${n}`);
      const r = await e.cliAsync('create', name, '--display-name', display);
      assert.equal(r.code, 0, `create ${name}: ${r.stderr}`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  ({ ctx, page, errors: pageErrors } = await openPage());
});

after(async () => {
  await ctx?.close();
  await e?.stop();
});

const row = (name) => page.locator(`tr[data-app="${name}"]`);
const shown = () => page.$$eval('tbody tr[data-app]', (rs) => rs.map((r) => r.getAttribute('data-app')));
const list = () => {
  const r = e.cli('list', '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};

/** Wait until the rows shown are exactly `want`, in order. */
async function rowsAre(want, what) {
  const deadline = Date.now() + 20000;
  let got;
  while (Date.now() < deadline) {
    got = await shown();
    if (JSON.stringify(got) === JSON.stringify(want)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(got, want, what);
}

const hashParams = () => new URLSearchParams(new URL(page.url()).hash.split('?')[1] ?? '');

test('all 53 apps are listed', async () => {
  await page.goto(e.loginUrl);
  await page.getByTestId('apps-table').waitFor();
  await rowsAre([...BLOGS, 'main', ...SHOPS, ...SVCS].sort((a, b) => a.localeCompare(b)), 'every app, by display name');
  assert.equal(await page.getByTestId('shown').textContent(), '53 shown');
});

test('the text filter narrows the rows and goes into the URL', async () => {
  await page.getByTestId('filter').fill('SHOP');
  await rowsAre(SHOPS, 'only the shops');
  assert.equal(await page.getByTestId('shown').textContent(), '6 of 53 shown');
  assert.equal(hashParams().get('q'), 'SHOP');
  // With a status filter on top: no shop runs yet.
  await page.getByTestId('status-filter').selectOption('running');
  await rowsAre([], 'no running shop');
  await page.getByTestId('no-match').waitFor();
  await page.getByTestId('status-filter').selectOption('');
  await rowsAre(SHOPS, 'the shops again');
});

test('a column header sorts ascending, then descending', async () => {
  await page.getByTestId('filter').fill('blog');
  await rowsAre(BLOGS, 'the blogs by name');
  const ports = Object.fromEntries(list().map((a) => [a.name, a.port]));
  const byPort = [...BLOGS].sort((a, b) => ports[a] - ports[b]);
  await page.locator('[data-sort="port"]').click();
  await rowsAre(byPort, 'by port, ascending');
  assert.equal(await page.locator('th[aria-sort]').getAttribute('aria-sort'), 'ascending');
  await page.locator('[data-sort="port"]').click();
  await rowsAre([...byPort].reverse(), 'by port, descending');
  assert.equal(await page.locator('th[aria-sort]').getAttribute('aria-sort'), 'descending');
  assert.equal(hashParams().get('sort'), 'port');
  assert.equal(hashParams().get('dir'), 'desc');
  await page.locator('[data-sort="name"]').click();
  await page.locator('[data-sort="name"]').click();
  await rowsAre([...BLOGS].reverse(), 'by name, descending');
});

test('select every shop shown and start them in bulk: each row says how it went', async () => {
  await page.locator('[data-sort="name"]').click(); // back to ascending
  await page.getByTestId('filter').fill('shop');
  await rowsAre(SHOPS, 'the shops');
  await page.getByTestId('select-all').check();
  await page.getByTestId('selected-count').filter({ hasText: '6 selected' }).waitFor();
  await page.getByTestId('bulk-start').click();
  for (const n of SHOPS) await row(n).locator('[data-status="running"]').waitFor({ timeout: 60000 });
  await page.getByTestId('bulk-summary').filter({ hasText: 'Started 6 apps' }).waitFor();
  assert.equal(await page.locator('[data-testid="outcome"][data-outcome="done"]').count(), 6);
  const running = list().filter((a) => a.status === 'running').map((a) => a.name).sort();
  assert.deepEqual(running, ['main', ...SHOPS].sort(), 'the engine runs exactly main and the six shops');
  // The status filter finds them among all 53.
  await page.getByTestId('filter').fill('');
  await page.getByTestId('status-filter').selectOption('running');
  await rowsAre(['main', ...SHOPS].sort((a, b) => a.localeCompare(b)), 'what runs');
  // A picture of the table: all apps, busiest first, the shops still selected.
  await page.getByTestId('status-filter').selectOption('');
  await page.locator('[data-sort="memory"]').click();
  await page.locator('[data-sort="memory"]').click();
  await page.waitForFunction(() => /MiB/.test(document.querySelector('tbody tr[data-app] [data-testid="mem"]')?.textContent ?? ''), null, { timeout: 30000 });
  await page.waitForTimeout(3000); // a few samples on the sparklines
  await shot(page, 'table-many');
  // The README's picture at the desktop window's size.
  if (DOCS_SHOTS) {
    await page.setViewportSize(DESKTOP);
    await docShot(page, 'apps-table');
    await page.setViewportSize(VIEWPORT);
  }
});

test('stop a selection in bulk: what is not selected keeps running; what is stopped already is skipped', async () => {
  await page.getByTestId('filter').fill('shop');
  await page.locator('[data-sort="name"]').click();
  await rowsAre(SHOPS, 'the shops');
  await row('shop_0').getByRole('checkbox', { name: 'Select shop_0' }).uncheck();
  await page.getByTestId('selected-count').filter({ hasText: '5 selected' }).waitFor();
  assert.equal(await page.getByTestId('select-all').evaluate((el) => el.indeterminate), true, 'some rows are selected');
  await page.getByTestId('bulk-stop').click();
  for (const n of SHOPS.slice(1)) await row(n).locator('[data-status="stopped"]').waitFor({ timeout: 30000 });
  await page.getByTestId('bulk-summary').filter({ hasText: 'Stopped 5 apps' }).waitFor();
  const status = Object.fromEntries(list().map((a) => [a.name, a.status]));
  assert.equal(status.shop_0, 'running', 'the unselected shop keeps running');
  for (const n of SHOPS.slice(1)) assert.equal(status[n], 'stopped', n);
  // All six again: only shop_0 needs stopping.
  await page.getByTestId('select-all').check();
  await page.getByTestId('selected-count').filter({ hasText: '6 selected' }).waitFor();
  await page.getByTestId('bulk-stop').click();
  await page.getByTestId('bulk-summary').filter({ hasText: 'Stopped 1 app, 5 skipped' }).waitFor();
  await row('shop_0').locator('[data-status="stopped"]').waitFor({ timeout: 30000 });
  assert.equal(await row('shop_1').getByTestId('outcome').getAttribute('data-outcome'), 'skipped');
  assert.equal(await row('shop_0').getByTestId('outcome').getAttribute('data-outcome'), 'done');
  assert.equal(list().find((a) => a.name === 'shop_0').status, 'stopped');
});

test('a reload keeps the filter, the status filter and the sort', async () => {
  await page.getByTestId('filter').fill('svc_1');
  await page.getByTestId('status-filter').selectOption('stopped');
  await page.locator('[data-sort="port"]').click();
  await page.locator('[data-sort="port"]').click();
  const ports = Object.fromEntries(list().map((a) => [a.name, a.port]));
  const want = SVCS.filter((n) => n.startsWith('svc_1')).sort((a, b) => ports[b] - ports[a]);
  await rowsAre(want, 'stopped svc_1x by port, descending');
  const before = page.url();
  await page.reload();
  await page.getByTestId('apps-table').waitFor();
  await rowsAre(want, 'the same rows after the reload');
  assert.equal(page.url(), before);
  assert.equal(await page.getByTestId('filter').inputValue(), 'svc_1');
  assert.equal(await page.getByTestId('status-filter').inputValue(), 'stopped');
  assert.equal(await page.locator('th[aria-sort]').getAttribute('aria-sort'), 'descending');
  assert.equal(await page.locator('th[aria-sort] [data-sort]').getAttribute('data-sort'), 'port');
  // To an app's page and back: the view is still there (and the link went where it said).
  await row(want[0]).getByRole('link', { name: want[0].replace(/^svc_/, 'Svc ') }).click();
  await page.waitForFunction((n) => location.hash === `#/apps/${n}`, want[0]);
  await page.getByRole('heading', { name: want[0].replace(/^svc_/, 'Svc ') }).waitFor();
  await page.goBack();
  await rowsAre(want, 'the same rows after coming back');
  assert.equal(page.url(), before);
  // The same URL in a new tab shows the same view.
  const p2 = await ctx.newPage();
  await p2.goto(before);
  await p2.getByTestId('apps-table').waitFor();
  await p2.waitForFunction((n) => document.querySelectorAll('tbody tr[data-app]').length === n, want.length);
  assert.deepEqual(await p2.$$eval('tbody tr[data-app]', (rs) => rs.map((r) => r.getAttribute('data-app'))), want);
  await p2.close();
});

test('no script error on any page', () => {
  assert.deepEqual(pageErrors, []);
});
