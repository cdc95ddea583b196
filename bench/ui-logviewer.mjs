// Benchmark: the log viewer's frame time in Chromium, (1) while following a fast log and
// (2) while scrolling a million lines, against a naive viewer (one DOM node per line, the way a
// simple log page does it) in the same run and the same browser.
//
// It runs the real built UI served by a real `hangar serve` (ui/e2e/harness.mjs), opens
// #/logs/main, and feeds lines through the viewer's own ingest path (the one the SSE stream
// uses), since no app can print at a fixed, high rate on demand.
//
// Usage: (cd ui && npm run build) && node bench/ui-logviewer.mjs   [RATE=50000 SECONDS=5]
// Needs HANGAR_BIN / HANGAR_DEMO_BIN or target/debug binaries, and /usr/bin/chromium.

import { startEngine, launchBrowser } from '../ui/e2e/harness.mjs';

const RATE = Number(process.env.RATE ?? 50000); // lines per second while following
const SECONDS = Number(process.env.SECONDS ?? 5);
const MILLION = 1_000_000;
const NAIVE_LINES = Number(process.env.NAIVE_LINES ?? 200_000);

const e = await startEngine();
const ctx = await launchBrowser();
const page = await ctx.newPage();
page.setDefaultTimeout(600000);
await page.goto(e.loginUrl);
await page.goto(`${e.base}/#/logs/main`);
await page.waitForFunction(() => window.__hangarLogViewer);

// Helpers installed in the page: a line maker, a frame recorder, and the naive viewer.
await page.evaluate(() => {
  const words = ['GET', 'POST', '/api/notes', '/_app/shop/admin', '200', '404', 'ms', 'user=42', 'cache miss', 'ok'];
  let n = 0;
  window.__mk = (count) => {
    const out = new Array(count);
    for (let i = 0; i < count; i++, n++) {
      const colour = n % 7 === 0 ? `\x1b[3${n % 8}m` : '';
      out[i] = { ts: new Date().toISOString(), stream: n % 11 === 0 ? 'err' : 'out', text: `${colour}line ${n} ${words[n % 10]} ${words[(n * 7) % 10]} ${'x'.repeat(n % 60)}${colour ? '\x1b[0m' : ''}` };
    }
    return out;
  };
  window.__frames = (ms, during) =>
    new Promise((resolve) => {
      const deltas = [];
      let last = performance.now();
      const end = last + ms;
      const tick = (t) => {
        deltas.push(t - last);
        last = t;
        during?.(t);
        if (t < end) requestAnimationFrame(tick);
        else resolve(deltas);
      };
      requestAnimationFrame((t) => {
        last = t;
        requestAnimationFrame(tick);
      });
    });
  window.__naive = () => {
    const host = document.querySelector('[data-testid="log-lines"]');
    const el = document.createElement('div');
    el.style.cssText = 'position:absolute;inset:0;overflow:auto;font:13px/18px monospace;background:var(--log-bg);z-index:3';
    host.appendChild(el);
    return {
      el,
      append(lines) {
        const frag = document.createDocumentFragment();
        for (const l of lines) {
          const d = document.createElement('div');
          d.textContent = `${l.ts} ${l.text}`;
          frag.appendChild(d);
        }
        el.appendChild(frag);
      },
    };
  };
});

const stats = (deltas) => {
  const s = [...deltas].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { frames: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s[s.length - 1], over50: s.filter((d) => d > 50).length };
};

async function follow(kind) {
  return page.evaluate(
    async ({ kind, rate, seconds }) => {
      const v = window.__hangarLogViewer;
      const naive = kind === 'naive' ? window.__naive() : null;
      let pending = [];
      // The producer: lines every 10 ms at the given rate.
      const per = Math.round(rate / 100);
      const prod = setInterval(() => {
        const lines = window.__mk(per);
        if (naive) pending.push(...lines);
        else v.ingest(lines);
      }, 10);
      // The naive viewer batches every 80 ms too, appends and scrolls to the end.
      const flush = naive
        ? setInterval(() => {
            naive.append(pending);
            pending = [];
            naive.el.scrollTop = naive.el.scrollHeight;
          }, 80)
        : null;
      const t0 = performance.now();
      const deltas = await window.__frames(seconds * 1000);
      clearInterval(prod);
      if (flush) clearInterval(flush);
      const rows = naive ? naive.el.childElementCount : v.buffer.rows;
      naive?.el.remove();
      return { deltas, rows, ms: performance.now() - t0 };
    },
    { kind, rate: RATE, seconds: SECONDS },
  );
}

async function scroll(kind, lines) {
  return page.evaluate(
    async ({ kind, lines }) => {
      const v = window.__hangarLogViewer;
      const t0 = performance.now();
      let el;
      let naive = null;
      if (kind === 'naive') {
        naive = window.__naive();
        for (let i = 0; i < lines; i += 50000) naive.append(window.__mk(Math.min(50000, lines - i)));
        el = naive.el;
      } else {
        v.buffer.clear();
        for (let i = 0; i < lines; i += 100000) v.ingest(window.__mk(Math.min(100000, lines - i)));
        v.flush();
        el = document.querySelector('.lv-scroller');
      }
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const loadMs = performance.now() - t0;
      el.scrollTop = 0;
      // Scroll through: a big jump every frame (dragging the thumb), then wheel-sized steps.
      const max = el.scrollHeight - el.clientHeight;
      let i = 0;
      const jumps = await window.__frames(3000, () => {
        i++;
        el.scrollTop = ((i * 0.013) % 1) * max;
      });
      const wheel = await window.__frames(3000, () => {
        el.scrollTop = Math.min(max, el.scrollTop + 120);
      });
      const rows = naive ? el.childElementCount : v.buffer.rows;
      naive?.el.remove();
      return { loadMs, jumps, wheel, rows };
    },
    { kind, lines },
  );
}

// Stop the viewer following the live stream of main while we measure.
await page.getByTestId('pause').click();
await page.getByTestId('pause').click();

const out = [];
const fmt = (n) => n.toFixed(1);
const row = (what, s, extra = '') =>
  out.push(`| ${what} | ${s.frames} | ${fmt(s.p50)} | ${fmt(s.p95)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${s.over50} | ${extra} |`);

const hf = await follow('hangar');
row(`Hangar viewer, following ${RATE.toLocaleString('en')} lines/s`, stats(hf.deltas), `${hf.rows.toLocaleString('en')} lines at the end`);
const nf = await follow('naive');
row(`naive viewer, following ${RATE.toLocaleString('en')} lines/s`, stats(nf.deltas), `${nf.rows.toLocaleString('en')} DOM rows at the end`);

const hs = await scroll('hangar', MILLION);
row(`Hangar viewer, ${MILLION.toLocaleString('en')} lines, thumb jumps`, stats(hs.jumps), `loaded in ${fmt(hs.loadMs)} ms`);
row(`Hangar viewer, ${MILLION.toLocaleString('en')} lines, wheel steps`, stats(hs.wheel), '');
const ns = await scroll('naive', NAIVE_LINES);
row(`naive viewer, ${NAIVE_LINES.toLocaleString('en')} lines, thumb jumps`, stats(ns.jumps), `loaded in ${fmt(ns.loadMs)} ms`);
row(`naive viewer, ${NAIVE_LINES.toLocaleString('en')} lines, wheel steps`, stats(ns.wheel), '');

const mem = await page.evaluate(() => (performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1048576) : null));
const version = ctx.browser()?.version?.() ?? 'chromium';

console.log(`\nChromium ${version} headless, 1400×900 viewport, ${new Date().toISOString().slice(0, 10)}; frame time = time between animation frames (ms; 16.7 is 60 fps); JS heap after the run ${mem ?? '?'} MiB.\n`);
console.log('| what | frames | p50 ms | p95 ms | p99 ms | max ms | frames > 50 ms | notes |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const l of out) console.log(l);

await ctx.close();
await e.stop();
