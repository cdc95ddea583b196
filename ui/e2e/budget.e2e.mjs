// The memory budget in the panel (issue 18): a real engine with `memory_budget`, three demo apps
// that each hold memory, visited through the proxy. The top bar shows what the apps hold of the
// budget; the app put to sleep says why on its page, and a visit wakes it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEngine, openPage, shot } from './harness.mjs';

let e, ctx, page, pageErrors;

before(async () => {
  // Three apps of ~130 MiB each; the budget fits two.
  e = await startEngine({ config: 'memory_budget = "330M"\n' });
  ({ ctx, page, errors: pageErrors } = await openPage({ timeout: 30000 }));
});

after(async () => {
  await ctx?.close();
  await e?.stop();
});

const status = (name) => JSON.parse(e.cli('status', name, '--json').stdout);

async function until(what, ok, ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function hold(name, mb) {
  const r = await fetch(`http://127.0.0.1:${e.proxyPort}/_app/${name}/api/hold?mb=${mb}`);
  assert.equal(r.status, 200, `${name}: ${await r.text()}`);
}

test('the top bar shows the budget, and the app put to sleep says why', async () => {
  for (const a of ['a1', 'b1', 'c1']) assert.equal(e.cli('create', a).code, 0);
  await page.goto(e.loginUrl);
  await page.locator('[data-testid="apps-table"]').waitFor();
  const budget = page.getByTestId('memory-budget');
  await budget.filter({ hasText: /of 330 MiB budget$/ }).waitFor();

  await hold('a1', 120);
  await hold('b1', 120);
  await until('the sampler to see a1 and b1 hold their memory', () =>
    ['a1', 'b1'].every((a) => (status(a).memory_bytes ?? 0) >= 120 * 2 ** 20));
  // The top bar follows what the apps hold (read every few seconds).
  await page.waitForFunction(() => /^Apps (2\d\d|3[0-2]\d)(\.\d)? MiB of 330 MiB budget$/.test(
    document.querySelector('[data-testid="memory-budget"]')?.textContent?.trim() ?? ''));

  // The third takes the budget past its mark: the least recently visited, a1, goes to sleep.
  await hold('c1', 120);
  await until('a1 to be put to sleep', () => {
    const v = status('a1');
    return v.status === 'stopped' && /^memory budget/.test(v.reason ?? '');
  });
  assert.equal(status('b1').status, 'running');
  assert.equal(status('c1').status, 'running');
  // The list says it sleeps (a visit wakes it), not merely that it stopped.
  await page.locator('tr[data-app="a1"] [data-status="stopped"]').filter({ hasText: 'Asleep' }).waitFor();
  await shot(page, 'budget-list');
  await page.goto(`${e.base}/#/apps/a1`);
  const reason = page.getByTestId('detail-reason');
  await reason.filter({ hasText: 'memory budget' }).waitFor();
  assert.match(await reason.textContent(), /least recently visited/);
  assert.ok(await page.getByText('Put to sleep', { exact: true }).isVisible(), 'the reason is labelled as a sleep');
  await shot(page, 'budget-detail');

  // A visit wakes it (room is made first) and answers.
  const r = await fetch(`http://127.0.0.1:${e.proxyPort}/_app/a1/api/notes`);
  assert.equal(r.status, 200);
  await until('a1 to run again', () => status('a1').status === 'running');
  await page.locator('[data-status="running"]').first().waitFor();
  assert.deepEqual(pageErrors, []);
});
