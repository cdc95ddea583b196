// Benchmark: the control panel's apps table at many apps (default 1,000) in Chromium: the first
// render, the browser's script time per second while the engine streams its events and metrics
// ticks, which rows one app's start touches in the DOM, and the time from a filter keystroke or a
// sort click to the next frame.
//
// It runs a real `hangar serve` (ui/e2e/harness.mjs) with N registered sub-apps (made through
// the API, 8 at a time, each with its own port) and two of them running, so the metrics stream carries three apps.
// UI_DIST=/path/to/dist measures another build of the UI (e.g. an older commit's) on the same
// engine; steps that build lacks (the filter) are reported as absent.
//
// A build that draws the first rows only is measured as a user gets it; DRAW_ALL=1 clicks its
// "Show all" first (timed), so the later figures are with every row drawn.
//
// Usage: (cd ui && npm run build) && node bench/ui-apps.mjs   [APPS=1000 IDLE_SECONDS=10 DRAW_ALL=1]
// Needs HANGAR_BIN / HANGAR_DEMO_BIN or target/debug binaries, and /usr/bin/chromium.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEngine, launchBrowser } from '../ui/e2e/harness.mjs';

const APPS = Number(process.env.APPS ?? 1000);
const IDLE_SECONDS = Number(process.env.IDLE_SECONDS ?? 10);

const e = await startEngine(process.env.UI_DIST ? { uiDir: process.env.UI_DIST } : {});
const token = readFileSync(join(e.home, 'token'), 'utf8').trim();
const api = async (method, path, body) => {
  const r = await fetch(`${e.base}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
};

const names = Array.from({ length: APPS }, (_, i) => `a_${String(i).padStart(4, '0')}`);
const made0 = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    // Ports given, as app_ports (1,000 ports by default) cannot hold main and 1,000 apps.
    while (next < names.length) {
      const i = next++;
      await api('POST', '/apps', { name: names[i], port: 30000 + i });
    }
  }),
);
console.error(`made ${APPS} apps in ${((performance.now() - made0) / 1000).toFixed(1)} s`);
await api('POST', `/apps/${names[1]}/start`, {});
await api('POST', `/apps/${names[2]}/start`, {});

const ctx = await launchBrowser();
const page = await ctx.newPage();
page.setDefaultTimeout(600000);
const cdp = await ctx.newCDPSession(page);
await cdp.send('Performance.enable');
const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));

const results = [];
const row = (what, value, notes = '') => {
  results.push({ what, value, notes });
  console.error(`${what}: ${value} ${notes}`);
};

// First render: from the login link to the table drawn (every row, or the first ones where the
// build draws a part: then "Show all" is timed too).
const t0 = performance.now();
await page.goto(e.loginUrl);
await page.waitForFunction(
  (n) => document.querySelectorAll('tbody tr[data-app]').length === n || document.querySelector('[data-testid="draw-all"]'),
  APPS + 1,
);
const firstRows = await page.locator('tbody tr[data-app]').count();
row('first render', `${(performance.now() - t0).toFixed(0)} ms`, `${firstRows} of ${APPS + 1} rows drawn`);
if (firstRows < APPS + 1 && process.env.DRAW_ALL) {
  const all = await page.evaluate(async (n) => {
    const t = performance.now();
    document.querySelector('[data-testid="draw-all"]').click();
    while (document.querySelectorAll('tbody tr[data-app]').length < n) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    return performance.now() - t;
  }, APPS + 1);
  row('"Show all" to frame', `${all.toFixed(0)} ms`, `${APPS + 1} rows; the figures below are with every row drawn`);
}

// Steady state: the event stream and the metrics ticks, nobody touching anything.
await page.waitForTimeout(2000);
const m0 = await metrics();
await page.waitForTimeout(IDLE_SECONDS * 1000);
const m1 = await metrics();
const perSec = (k) => (((m1[k] - m0[k]) * 1000) / IDLE_SECONDS).toFixed(1);
row('script time per second, idle', `${perSec('ScriptDuration')} ms`, `task ${perSec('TaskDuration')} ms/s, layout ${perSec('LayoutDuration')} ms/s`);

// One app's start: which rows change in the DOM while it starts and runs for 3 s.
await page.evaluate(() => {
  window.__touched = new Set();
  window.__mo = new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      const tr = el?.closest?.('tr[data-app]');
      window.__touched.add(tr ? tr.getAttribute('data-app') : '(outside the rows)');
    }
  });
  window.__mo.observe(document.querySelector('tbody'), { subtree: true, childList: true, attributes: true, characterData: true });
});
const s0 = await metrics();
await api('POST', `/apps/${names[3]}/start`, {});
await page.waitForTimeout(3000);
const s1 = await metrics();
const touched = await page.evaluate(() => {
  window.__mo.disconnect();
  return [...window.__touched].sort();
});
row('rows changed while one app starts (3 s)', `${touched.length}`, touched.join(' '));
row('script time during that start (3 s)', `${((s1.ScriptDuration - s0.ScriptDuration) * 1000).toFixed(1)} ms`);

// From an input to the next frame, the median of several.
async function toFrame(act) {
  return page.evaluate(async (act) => {
    const t = performance.now();
    if (act.kind === 'filter') {
      const input = document.querySelector('[data-testid="filter"]');
      input.value = act.value;
      input.dispatchEvent(new Event('input', { bubbles: true }));
    } else {
      document.querySelector(`[data-sort="${act.key}"]`).click();
    }
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    return performance.now() - t;
  }, act);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
if (await page.locator('[data-testid="filter"]').count()) {
  const narrow = [];
  const wide = [];
  for (let i = 0; i < 5; i++) {
    narrow.push(await toFrame({ kind: 'filter', value: `a_0${i}1` })); // ~10 rows
    wide.push(await toFrame({ kind: 'filter', value: '' })); // every row back
  }
  row('filter keystroke to frame (to ~10 rows)', `${median(narrow).toFixed(1)} ms`, 'median of 5');
  row('filter cleared to frame (every row back)', `${median(wide).toFixed(1)} ms`, 'median of 5');
  const sorts = [];
  for (const key of ['port', 'memory', 'status', 'name', 'port']) sorts.push(await toFrame({ kind: 'sort', key }));
  row('sort click to frame (every row reordered)', `${median(sorts).toFixed(1)} ms`, 'median of 5');
} else {
  row('filter and sort', 'absent', 'this UI build has no filter');
}

console.log(`| what | value | notes |\n| --- | ---: | --- |`);
for (const r of results) console.log(`| ${r.what} | ${r.value} | ${r.notes} |`);

await ctx.close();
await e.stop();
