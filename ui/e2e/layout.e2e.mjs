// The panel at the desktop's sizes (issue 29): a real engine with five apps whose names and
// domains are ordinary and long, the panel in a real Chromium at 1100×720 (the desktop window)
// and 800×600, light and dark. Every figure comes from the browser's own layout (bounding
// boxes): no sideways scroll, header cells that neither overlap nor clip, links on one line,
// each row's actions on one line, rows at most two lines of text; below 600 px the rows are
// cards. The row menu is a menu button driven from the keyboard. axe-core finds no violation
// on any page (apps, an app's page, the log viewer, the new-app and edit forms, the dialogs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEngine, openPage, shot, axeViolations } from './harness.mjs';

let e, ctx, page, pageErrors;

// Display name, name, and the flags of `hangar create`.
const APPS = [
  ['Customer relations (EU)', 'customer-relations-eu', ['--domain', 'crm.eu.example.test', '--pin', '--start-mode', 'with-main']],
  ['Marketing analytics dashboard', 'marketing-analytics-dashboard', ['--domain', 'analytics.marketing.example.test', '--pin']],
  ['Shop', 'shop', []],
  ['Inventory and warehouse service', 'inventory_warehouse_service', ['--start-mode', 'with-main']],
  ['Blog', 'blog', ['--domain', 'blog.example.test']],
];
const SIZES = [
  { width: 1100, height: 720 },
  { width: 800, height: 600 },
];
const SCHEMES = ['light', 'dark'];
const CRM = 'customer-relations-eu';

before(async () => {
  e = await startEngine();
  for (const [display, name, flags] of APPS) {
    const r = e.cli('create', name, '--display-name', display, ...flags);
    assert.equal(r.code, 0, `create ${name}: ${r.stderr}`);
  }
  for (const name of [CRM, 'shop']) {
    const r = e.cli('start', name);
    assert.equal(r.code, 0, `start ${name}: ${r.stderr}`);
  }
  ({ ctx, page, errors: pageErrors } = await openPage({ timeout: 30000 }));
  await page.goto(e.loginUrl);
  await page.getByTestId('apps-table').waitFor();
  // Figures in the rows that run, so every column has its widest content.
  await page.waitForFunction((n) => /MiB/.test(document.querySelector(`tr[data-app="${n}"] [data-testid="mem"]`)?.textContent ?? ''), CRM, { timeout: 60000 });
});

after(async () => {
  await ctx?.close();
  await e?.stop();
});

/** What the page's layout says about the apps table, measured in the browser. */
function measureTable() {
  const box = (el) => el.getBoundingClientRect();
  const shown = (el) => getComputedStyle(el).display !== 'none' && box(el).width > 0;
  const out = { problems: [] };
  const bad = (m) => out.problems.push(m);
  const se = document.scrollingElement;
  if (se.scrollWidth > se.clientWidth) bad(`the page scrolls sideways: ${se.scrollWidth} > ${se.clientWidth}`);
  // The top bar is one line (long pinned names give way).
  const top = document.querySelector('header.top');
  if (box(top).height > 50) bad(`the top bar takes ${box(top).height} px, more than one line`);
  // Header cells: in a row, none overlapping the next, none clipping its label.
  const ths = [...document.querySelectorAll('[data-testid="apps-table"] thead th')].filter(shown);
  for (let i = 0; i + 1 < ths.length; i++) {
    const a = box(ths[i]), b = box(ths[i + 1]);
    if (a.right > b.left + 0.5) bad(`header cells overlap: ${ths[i].className} ends at ${a.right}, ${ths[i + 1].className} starts at ${b.left}`);
  }
  for (const th of ths) {
    const t = box(th);
    for (const el of th.querySelectorAll('button, .label')) {
      const r = box(el);
      // Whole pixels: a label one pixel short already shows an ellipsis.
      if (el.scrollWidth > el.clientWidth) bad(`a header label is clipped: ${th.className} (${el.scrollWidth} > ${el.clientWidth})`);
      if (r.left < t.left - 0.5 || r.right > t.right + 0.5) bad(`a header label runs out of its cell: ${th.className}`);
    }
  }
  const rows = [...document.querySelectorAll('tbody tr[data-app]')];
  out.rows = rows.length;
  const lh = parseFloat(getComputedStyle(document.body).lineHeight);
  out.lineHeight = lh;
  out.rowHeights = [];
  for (const tr of rows) {
    const name = tr.dataset.app;
    const cells = [...tr.children].filter(shown);
    // A row is at most two lines of text: its tallest cell's content, without the padding.
    const cs = getComputedStyle(cells[1]);
    const pad = parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom);
    const h = box(tr).height;
    out.rowHeights.push(Math.round(h));
    if (h > 2 * lh + pad + 2) bad(`${name}: the row is ${h} px tall, more than two lines (${2 * lh + pad + 2})`);
    // No content runs out of its cell sideways (a sparkline under the next header, say).
    for (const td of cells) {
      const c = box(td);
      for (const el of td.querySelectorAll('*')) {
        if (!shown(el) || el.closest('[role="menu"]')) continue;
        const r = box(el);
        if (r.left < c.left - 0.5 || r.right > c.right + 0.5) {
          bad(`${name}: ${el.tagName.toLowerCase()}.${el.className?.baseVal ?? el.className} runs out of its cell (${r.left}–${r.right} outside ${c.left}–${c.right})`);
          break;
        }
      }
    }
    // Every link on one line.
    for (const a of tr.querySelectorAll('a')) {
      if (!shown(a)) continue;
      const r = box(a);
      const one = parseFloat(getComputedStyle(a).lineHeight) || lh;
      if (!a.classList.contains('icon') && r.height > one * 1.5) bad(`${name}: the link ${a.textContent} takes ${r.height} px, more than one line`);
    }
    // The URL: the one the app is visited at, whole in its title, and copied with one button.
    const url = tr.querySelector('[data-testid="url"]');
    if (!url) bad(`${name}: no URL`);
    else if (url.title !== url.href) bad(`${name}: the URL's title (${url.title}) is not the whole URL (${url.href})`);
    // The icon actions say what they do: a name for a screen reader, a tooltip for the mouse.
    for (const el of tr.querySelectorAll('[data-testid="actions"] .icon')) {
      if (!el.getAttribute('aria-label') || !el.title) bad(`${name}: an icon action without a name or a tooltip: ${el.outerHTML.slice(0, 80)}`);
    }
    // Every icon is drawn: its symbol exists and has a shape.
    for (const use of tr.querySelectorAll('svg use')) {
      if (!shown(use.closest('svg'))) continue;
      const href = use.getAttribute('href');
      if (!document.querySelector(`symbol${href}`) || !(use.getBBox().width > 0)) bad(`${name}: the icon ${href} draws nothing`);
    }
    // The actions on one line.
    const acts = [...tr.querySelectorAll('[data-testid="actions"] > *')].filter(shown);
    if (acts.length < 4) bad(`${name}: ${acts.length} actions shown`);
    const tops = acts.map((el) => box(el).top + box(el).height / 2);
    if (Math.max(...tops) - Math.min(...tops) > 2) bad(`${name}: its actions are not on one line (${tops.join(', ')})`);
  }
  return out;
}

async function sized({ width, height }, scheme) {
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme: scheme });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

async function noAxeViolation(what) {
  assert.deepEqual(await axeViolations(page), [], `axe-core on ${what}`);
}

for (const size of SIZES) {
  for (const scheme of SCHEMES) {
    test(`the apps table fits ${size.width}×${size.height} (${scheme})`, async () => {
      await page.goto(`${e.base}/#/`);
      await page.getByTestId('apps-table').waitFor();
      await sized(size, scheme);
      const m = await page.evaluate(measureTable);
      assert.equal(m.rows, APPS.length + 1, 'every app and main');
      assert.deepEqual(m.problems, [], `at ${size.width}×${size.height}, ${scheme}`);
      // The background says which scheme is on (both are checked, not one twice).
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(bg, scheme === 'dark' ? 'rgb(21, 24, 29)' : 'rgb(246, 247, 249)');
      // The columns that matter less: their own columns at neither size; chips in the app's cell.
      assert.equal(await page.locator('th.c-domain').isVisible(), false);
      const chips = await page.locator(`tr[data-app="${CRM}"] .chip`).allTextContents();
      assert.deepEqual(chips.map((c) => c.trim()), ['with main', 'pinned', 'crm.eu.example.test']);
      console.log(`${size.width}×${size.height} ${scheme}: row heights ${m.rowHeights.join(', ')} px (line ${m.lineHeight} px)`);
      await shot(page, `layout-apps-${size.width}-${scheme}`);
      await noAxeViolation(`the apps page at ${size.width}×${size.height}, ${scheme}`);
    });
  }
}

test('wide, the folded columns have their own', async () => {
  await sized({ width: 1600, height: 900 }, 'light');
  assert.equal(await page.locator('th.c-domain').isVisible(), true);
  assert.equal(await page.locator(`tr[data-app="${CRM}"] .chip`).first().isVisible(), false);
  const m = await page.evaluate(measureTable);
  assert.deepEqual(m.problems, [], 'at 1600×900');
});

test('one URL per app: its domain, else NAME.localhost; copied with one click', async () => {
  await sized(SIZES[0], 'light');
  const href = (n) => page.locator(`tr[data-app="${n}"] [data-testid="url"]`).getAttribute('href');
  assert.equal(await href(CRM), `http://crm.eu.example.test:${e.proxyPort}/`);
  assert.equal(await href('shop'), `http://shop.localhost:${e.proxyPort}/`);
  assert.equal(await page.locator(`tr[data-app="${CRM}"] td.c-urls a`).count(), 1, 'one link in the URL cell');
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: e.base });
  await page.getByRole('button', { name: `Copy the URL of ${CRM}` }).click();
  await page.getByRole('status').filter({ hasText: `Copied the URL of ${CRM}` }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `http://crm.eu.example.test:${e.proxyPort}/`);
  // The app's page lists every URL.
  await page.goto(`${e.base}/#/apps/${CRM}`);
  const all = await page.locator('dd.urls a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(all, [`http://${CRM}.localhost:${e.proxyPort}/`, `http://127.0.0.1:${e.proxyPort}/_app/${CRM}/`, `http://crm.eu.example.test:${e.proxyPort}/`]);
});

test('the row menu is a menu button: arrows, Escape and Enter from the keyboard', async () => {
  await page.goto(`${e.base}/#/`);
  await page.getByTestId('apps-table').waitFor();
  const button = page.getByRole('button', { name: `More actions for ${CRM}` });
  assert.equal(await button.getAttribute('aria-haspopup'), 'menu');
  assert.equal(await button.getAttribute('aria-expanded'), 'false');
  await button.focus();
  await page.keyboard.press('Enter');
  const menu = page.getByRole('menu', { name: `More actions for ${CRM}` });
  await menu.waitFor();
  assert.equal(await button.getAttribute('aria-expanded'), 'true');
  assert.equal(await button.getAttribute('aria-controls'), await menu.getAttribute('id'));
  const focused = () => page.evaluate(() => document.activeElement?.textContent?.trim());
  assert.deepEqual((await menu.getByRole('menuitem').allTextContents()).map((t) => t.trim()), ['Restart', 'Edit', 'Back up', 'Delete…']);
  assert.equal(await focused(), 'Restart', 'the first item has focus');
  await page.keyboard.press('ArrowDown');
  assert.equal(await focused(), 'Edit');
  await page.keyboard.press('End');
  assert.equal(await focused(), 'Delete…');
  await page.keyboard.press('ArrowDown');
  assert.equal(await focused(), 'Restart', 'the arrows wrap');
  await page.keyboard.press('ArrowUp');
  assert.equal(await focused(), 'Delete…');
  // In sight, whole: not clipped by the table.
  const r = await menu.boundingBox();
  const vp = page.viewportSize();
  assert.ok(r.x >= 0 && r.y >= 0 && r.x + r.width <= vp.width && r.y + r.height <= vp.height, `the menu is in the window: ${JSON.stringify(r)}`);
  await noAxeViolation('the apps page with a row menu open');
  await page.keyboard.press('Escape');
  await menu.waitFor({ state: 'detached' });
  assert.equal(await button.getAttribute('aria-expanded'), 'false');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), `More actions for ${CRM}`, 'Escape gives focus back to the button');
  // ArrowUp opens it on the last item; Enter runs it: Delete… opens the delete dialog.
  await page.keyboard.press('ArrowUp');
  await menu.waitFor();
  assert.equal(await focused(), 'Delete…');
  await page.keyboard.press('Enter');
  const dialog = page.getByTestId('delete-dialog');
  await dialog.waitFor();
  await noAxeViolation('the delete dialog');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });
  // Edit goes to the form.
  await button.click();
  await menu.getByRole('menuitem', { name: 'Edit' }).click();
  await page.waitForFunction((n) => location.hash === `#/apps/${n}/edit`, CRM);
  await page.locator('#f-display').waitFor();
  await page.waitForFunction(() => document.querySelector('#f-display')?.value === 'Customer relations (EU)');
  await noAxeViolation('the edit form');
});

test('the row menu backs an app up, and the row says where to', async () => {
  await sized(SIZES[0], 'light');
  await page.goto(`${e.base}/#/`);
  const row = page.locator('tr[data-app="shop"]');
  await row.getByRole('button', { name: 'More actions for shop' }).click();
  await page.getByRole('menu').getByRole('menuitem', { name: 'Back up' }).click();
  await row.getByRole('status').filter({ hasText: /^backed up to shop\./ }).waitFor({ timeout: 30000 });
  const listed = JSON.parse(e.cli('backups', 'shop', '--json').stdout);
  assert.equal(listed.length, 1, 'the CLI sees the archive');
  assert.equal((await row.getByRole('status').textContent()).trim(), `backed up to ${listed[0].name}`);
  const m = await page.evaluate(measureTable);
  assert.deepEqual(m.problems, [], 'the note keeps the row at two lines');
});

test('the dialogs have no accessibility violation: migrate, restore', async () => {
  await page.goto(`${e.base}/#/`);
  await page.getByTestId('import-legacy').click();
  const imp = page.getByTestId('import-dialog');
  await imp.waitFor();
  await noAxeViolation('the migrate dialog');
  await imp.getByRole('button', { name: 'Cancel' }).click();
  await imp.waitFor({ state: 'hidden' });
  // The backup made from the row menu, restored from the app's page.
  await page.goto(`${e.base}/#/apps/shop`);
  await page.getByTestId('restore-as').first().click();
  const dialog = page.getByTestId('restore-dialog');
  await dialog.getByTestId('restore-name').waitFor();
  await noAxeViolation('the restore dialog');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
});

test('below 600 px each app is a card, still without sideways scroll', async () => {
  await page.goto(`${e.base}/#/`);
  await page.getByTestId('apps-table').waitFor();
  for (const scheme of SCHEMES) {
    await sized({ width: 480, height: 800 }, scheme);
    const m = await page.evaluate(() => {
      const se = document.scrollingElement;
      const rows = [...document.querySelectorAll('tbody tr[data-app]')];
      return {
        scroll: [se.scrollWidth, se.clientWidth],
        displays: [...new Set(rows.map((r) => getComputedStyle(r).display))],
        headers: [...document.querySelectorAll('thead th')].filter((th) => getComputedStyle(th).display !== 'none').length,
        outside: rows.flatMap((r) => [...r.querySelectorAll('a, button')].filter((el) => el.getBoundingClientRect().right > se.clientWidth + 0.5).map((el) => el.getAttribute('aria-label') ?? el.textContent)),
        // In a card, no two of its parts overlap.
        overlaps: rows.flatMap((r) => {
          const cells = [...r.children].filter((td) => getComputedStyle(td).display !== 'none').map((td) => [td.className, td.getBoundingClientRect()]);
          const out = [];
          for (let i = 0; i < cells.length; i++) {
            for (let j = i + 1; j < cells.length; j++) {
              const [a, x] = cells[i], [b, y] = cells[j];
              if (x.left < y.right - 0.5 && y.left < x.right - 0.5 && x.top < y.bottom - 0.5 && y.top < x.bottom - 0.5) out.push(`${r.dataset.app}: ${a} / ${b}`);
            }
          }
          return out;
        }),
      };
    });
    assert.ok(m.scroll[0] <= m.scroll[1], `sideways scroll at 480 px: ${m.scroll}`);
    assert.deepEqual(m.displays, ['grid'], 'every row a card');
    assert.equal(m.headers, 1, 'only the select-all box of the header');
    assert.deepEqual(m.outside, [], 'no control out of the window');
    assert.deepEqual(m.overlaps, [], 'the parts of a card overlap');
    // The cards sort by a menu of their own.
    assert.equal(await page.getByTestId('sort-pick').isVisible(), true);
    await shot(page, `layout-cards-${scheme}`);
    await noAxeViolation(`the cards (${scheme})`);
  }
  await page.getByTestId('sort-pick').selectOption('port:desc');
  await page.waitForFunction(() => location.hash.includes('sort=port') && location.hash.includes('dir=desc'));
  await page.getByTestId('sort-pick').selectOption('name:asc');
});

test('an app’s page at both sizes: actions on one line, charts without sideways scroll', async () => {
  await page.goto(`${e.base}/#/apps/${CRM}`);
  await page.locator('.chart canvas').first().waitFor();
  for (const size of SIZES) {
    for (const scheme of SCHEMES) {
      await sized(size, scheme);
      await page.waitForTimeout(300); // the charts follow their width on a resize
      const m = await page.evaluate(() => {
        const se = document.scrollingElement;
        const acts = [...document.querySelectorAll('[data-testid="actions"] > *')];
        const mids = acts.map((el) => { const r = el.getBoundingClientRect(); return r.top + r.height / 2; });
        return {
          scroll: [se.scrollWidth, se.clientWidth],
          acts: acts.length,
          spread: Math.max(...mids) - Math.min(...mids),
          charts: [...document.querySelectorAll('.chart')].map((c) => c.getBoundingClientRect().right),
        };
      });
      const what = `${size.width}×${size.height} ${scheme}`;
      assert.ok(m.scroll[0] <= m.scroll[1], `${what}: sideways scroll ${m.scroll}`);
      assert.ok(m.acts >= 5, `${what}: ${m.acts} actions`);
      assert.ok(m.spread <= 2, `${what}: the actions are not on one line (${m.spread} px apart)`);
      for (const right of m.charts) assert.ok(right <= m.scroll[1], `${what}: a chart ends at ${right}, past ${m.scroll[1]}`);
      await shot(page, `layout-detail-${size.width}-${scheme}`);
      await noAxeViolation(`an app's page at ${what}`);
    }
  }
  // Its menu: restart, upgrade, edit, back up, delete.
  await page.getByRole('button', { name: `More actions for ${CRM}` }).click();
  const items = await page.getByRole('menu').getByRole('menuitem').allTextContents();
  assert.deepEqual(items.map((t) => t.trim()), ['Restart', 'Upgrade', 'Edit', 'Back up', 'Delete…']);
  await page.keyboard.press('Escape');
});

test('the log window at 960×600: the toolbar and the search leave the first lines in sight', async () => {
  for (const scheme of SCHEMES) {
    await sized({ width: 960, height: 600 }, scheme);
    await page.goto(`${e.base}/#/logs/${CRM}?bare`);
    await page.getByTestId('log-conn').filter({ hasText: 'following' }).waitFor();
    await page.locator('[data-testid="log-lines"] .lv-row').first().waitFor();
    const m = await page.evaluate(() => {
      const se = document.scrollingElement;
      const r = (s) => document.querySelector(s).getBoundingClientRect();
      const lines = r('[data-testid="log-lines"]');
      return {
        scroll: [se.scrollWidth, se.clientWidth, se.scrollHeight, se.clientHeight],
        search: r('[data-testid="search"]').bottom,
        tools: r('[role="toolbar"]').bottom,
        toolsHeight: r('[role="toolbar"]').height,
        lines: [lines.top, lines.bottom, lines.height],
        status: r('[data-testid="line-count"]').bottom,
      };
    });
    assert.ok(m.scroll[0] <= m.scroll[1], `${scheme}: sideways scroll ${m.scroll}`);
    assert.ok(m.scroll[2] <= m.scroll[3], `${scheme}: the log window scrolls as a page (${m.scroll})`);
    assert.ok(m.toolsHeight < 40, `${scheme}: the toolbar takes ${m.toolsHeight} px (more than one line)`);
    assert.ok(m.lines[0] >= m.search && m.lines[0] >= m.tools, `${scheme}: the lines start under the bars (${JSON.stringify(m)})`);
    assert.ok(m.lines[2] >= 300, `${scheme}: the lines have ${m.lines[2]} px of 600`);
    assert.ok(m.status <= 600, `${scheme}: the status line is in the window`);
    await shot(page, `layout-logs-${scheme}`);
    await noAxeViolation(`the log viewer (${scheme})`);
  }
});

test('the log viewer in the main window and the new-app form have no accessibility violation', async () => {
  await sized(SIZES[0], 'light');
  await page.goto(`${e.base}/#/logs/${CRM}`);
  await page.getByTestId('log-conn').filter({ hasText: 'following' }).waitFor();
  await noAxeViolation('the log viewer in the main window');
  for (const size of SIZES) {
    await sized(size, 'dark');
    await page.goto(`${e.base}/#/new`);
    await page.locator('#f-name').waitFor();
    const [w, cw] = await page.evaluate(() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]);
    assert.ok(w <= cw, `the form scrolls sideways at ${size.width}: ${w} > ${cw}`);
    await noAxeViolation(`the new-app form at ${size.width}×${size.height}`);
  }
});

test('no script error on any page', () => {
  assert.deepEqual(pageErrors, []);
});
