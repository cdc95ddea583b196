// The end-to-end harness: a real `hangar serve` on a temporary home with free ports, and Debian's
// Chromium driven by playwright-core. Nothing is mocked; a missing part fails loudly.

import { spawn, spawnSync, execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const UI_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(UI_DIR, '..');
export const OUT = resolve(process.env.HANGAR_TEST_OUTPUT ?? join(REPO, 'test-output'));
export const CHROMIUM = process.env.HANGAR_CHROMIUM ?? '/usr/bin/chromium';

export function bins() {
  const target = process.env.CARGO_TARGET_DIR ?? join(REPO, 'target');
  const hangar = process.env.HANGAR_BIN ?? join(target, 'debug', 'hangar');
  const demo = process.env.HANGAR_DEMO_BIN ?? join(target, 'debug', 'hangar-demo');
  for (const [what, p] of [['hangar', hangar], ['hangar-demo', demo]]) {
    if (!existsSync(p)) throw new Error(`${what} is missing at ${p}: build it first with \`cargo build --workspace\` (or set HANGAR_BIN / HANGAR_DEMO_BIN)`);
  }
  return { hangar, demo };
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** Start an engine (`config`: the text of its `hangar.toml`); resolves once it printed its
 * control-panel link. */
export async function startEngine({ uiDir = join(UI_DIR, 'dist'), config = null } = {}) {
  if (!existsSync(join(uiDir, 'index.html'))) throw new Error(`the UI is not built (${uiDir}); run \`npm run build\` in ui/`);
  const { hangar, demo } = bins();
  const home = mkdtempSync(join(tmpdir(), 'hangar-e2e-'));
  if (config !== null) writeFileSync(join(home, 'hangar.toml'), config);
  const proxyPort = await freePort();
  let apiPort = await freePort();
  while (apiPort === proxyPort) apiPort = await freePort();
  const env = { ...process.env, HANGAR_HOME: home, HANGAR_DEMO_BIN: demo, HANGAR_UI_DIR: uiDir, HANGAR_LOG: 'info' };
  const child = spawn(hangar, ['serve', '--proxy-port', String(proxyPort), '--api-port', String(apiPort)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  // Off a terminal the engine names `hangar open` instead of printing a login code (issue 15).
  await new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`the engine printed no control-panel line within 30 s:\n${stderr}`)), 30000);
    child.stderr.on('data', (d) => {
      stderr += d.toString();
      if (/Control panel: /.test(stderr)) {
        clearTimeout(timer);
        res();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`the engine exited (${code}) before it was ready:\n${stderr}`));
    });
  });
  const base = `http://127.0.0.1:${apiPort}`;
  // Wait until the API answers.
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`${base}/`);
      if (r.ok) break;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const cli = (...args) => {
    const r = spawnSync(hangar, args, { env, encoding: 'utf8', timeout: 60000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** The same, without blocking: several may run at once. */
  const cliAsync = (...args) =>
    new Promise((res) => {
      execFile(hangar, args, { env, encoding: 'utf8', timeout: 60000 }, (err, stdout, stderr) => {
        res({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      });
    });
  const loginUrl = cli('open', '--no-browser').stdout.trim();
  return {
    home,
    apiPort,
    proxyPort,
    base,
    loginUrl,
    cli,
    cliAsync,
    log: () => stderr,
    token: () => cli('open', '--no-browser'),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            child.kill('SIGKILL');
            r();
          }, 20000);
          child.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** The browser's window in the suites, and the desktop app's window (its pictures' size). */
export const VIEWPORT = { width: 1400, height: 900 };
export const DESKTOP = { width: 1100, height: 720 };

/** A browser context on a fresh profile (playwright wants the profile as userDataDir). */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (or set HANGAR_CHROMIUM)`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'hangar-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: VIEWPORT,
    acceptDownloads: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    rmSync(profile, { recursive: true, force: true });
  };
  return context;
}

/** A browser on a fresh profile and one page on it, whose script errors are collected in
 * `errors` (each suite asserts none at its end). */
export async function openPage({ timeout = 20000 } = {}) {
  const ctx = await launchBrowser();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.setDefaultTimeout(timeout);
  return { ctx, page, errors };
}

export function shot(page, name) {
  mkdirSync(OUT, { recursive: true });
  return page.screenshot({ path: join(OUT, `ui-${name}.png`), fullPage: true });
}

/**
 * A picture for the documentation: the visible part of the page (not the whole scroll height, so
 * the file stays small), written to HANGAR_DOCS_SHOTS/NAME.png only when that folder is set
 * (`HANGAR_DOCS_SHOTS=docs/screenshots ./run-e2e.sh`); a normal run never touches docs/.
 */
/** Whether this run writes the documentation pictures (a test may stage a richer page for them). */
export const DOCS_SHOTS = Boolean(process.env.HANGAR_DOCS_SHOTS);

export async function docShot(page, name) {
  const dir = process.env.HANGAR_DOCS_SHOTS;
  if (!dir) return;
  const abs = resolve(REPO, dir);
  mkdirSync(abs, { recursive: true });
  const file = join(abs, `${name}.png`);
  await page.screenshot({ path: file });
  // 256 colours are plenty for a UI and less than half the bytes (ImageMagick, when present).
  const q = spawnSync('convert', [file, '-colors', '256', `PNG8:${file}`], { encoding: 'utf8', timeout: 60000 });
  if (q.error || q.status !== 0) console.error(`docShot: ${name}.png kept at full colour (convert: ${q.error?.message ?? q.stderr.trim()})`);
}

/**
 * The accessibility rules' violations on the page as it is now: axe-core (the npm package) run
 * in the page, every rule it applies by default. Each violation as `rule (impact): targets`, so
 * an assertion's message names what to fix.
 */
export async function axeViolations(page) {
  const { default: axe } = await import('axe-core');
  // Evaluated, not a script tag: the panel's Content-Security-Policy allows no inline script.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axe.source);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(' ')) }));
  });
  return found.map((v) => `${v.id} (${v.impact}): ${v.targets.slice(0, 5).join(', ')}${v.targets.length > 5 ? ` and ${v.targets.length - 5} more` : ''}`);
}
