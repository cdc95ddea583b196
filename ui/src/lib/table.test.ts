import { describe, expect, it } from 'vitest';
import type { AppView } from './api';
import { StatusRules, type StatusRule } from './statuses';
import served from './statuses.fixture.json';
import { parseRoute } from './router.svelte';
import {
  DEFAULT_QUERY, parseQuery, queryHash, toggleSort, visibleRows, selectionState, bulkSkip, runBulk, bulkSummary,
  SORT_KEYS, visitUrl, shortUrl, type Outcome, type TableQuery,
} from './table';

const rules = new StatusRules(served.statuses as StatusRule[]);

function app(name: string, over: Partial<AppView> = {}): AppView {
  return {
    name, display_name: name, status: 'stopped', pid: null, port: 14000, start_mode: 'on-visit', domain: null,
    pinned: false, url: `http://127.0.0.1:13000/_app/${name}/`, urls: [`http://127.0.0.1:13000/_app/${name}/`],
    db: 'sqlite', cpu_percent: null, memory_bytes: null, uptime_seconds: null, restarts: 0, error: null,
    runtime: 'demo', desired: 'stopped', env: {}, progress: null, log_lines_lost: 0, created_at: '', idle_timeout: null,
    version: 1, ...over,
  };
}

describe('the one URL the table shows', () => {
  const urls = ['http://crm.localhost:13000/', 'http://127.0.0.1:13000/_app/crm/', 'http://crm.eu.example.test:13000/'];
  it('is the domain’s when the app has one', () => {
    expect(visitUrl(app('crm', { domain: 'crm.eu.example.test', urls }))).toBe('http://crm.eu.example.test:13000/');
    expect(visitUrl(app('crm', { domain: 'CRM.eu.example.test', urls }))).toBe('http://crm.eu.example.test:13000/');
  });
  it('else the app’s own origin (the first URL), else its proxy address', () => {
    expect(visitUrl(app('crm', { urls }))).toBe('http://crm.localhost:13000/');
    // A domain the engine listed no URL for does not invent one.
    expect(visitUrl(app('crm', { domain: 'other.test', urls }))).toBe('http://crm.localhost:13000/');
    expect(visitUrl(app('main', { urls: [], url: 'http://127.0.0.1:13000/' }))).toBe('http://127.0.0.1:13000/');
  });
  it('is written without its scheme', () => {
    expect(shortUrl('http://crm.eu.example.test:13000/')).toBe('crm.eu.example.test:13000/');
    expect(shortUrl('https://a.test/')).toBe('a.test/');
  });
});

const q = (over: Partial<TableQuery> = {}): TableQuery => ({ ...DEFAULT_QUERY, ...over });
const names = (rows: AppView[]) => rows.map((a) => a.name);

describe('the apps table query in the URL', () => {
  it('round-trips every field, leaving defaults out', () => {
    expect(queryHash(DEFAULT_QUERY)).toBe('#/');
    const t = q({ q: 'shop & co', status: 'running', sort: 'cpu', dir: 'desc' });
    const h = queryHash(t);
    expect(h).toBe('#/?q=shop+%26+co&status=running&sort=cpu&dir=desc');
    expect(parseQuery(h)).toEqual(t);
    expect(parseQuery('#/')).toEqual(DEFAULT_QUERY);
    expect(parseQuery('')).toEqual(DEFAULT_QUERY);
    for (const sort of SORT_KEYS) expect(parseQuery(queryHash(q({ sort }))).sort).toBe(sort);
  });
  it('keeps the page the apps page', () => {
    expect(parseRoute(queryHash(q({ q: 'x', sort: 'port' })))).toEqual({ page: 'apps' });
  });
  it('falls back to the default on anything it does not know', () => {
    expect(parseQuery('#/?sort=evil&dir=sideways&status=%3Cscript%3E')).toEqual(DEFAULT_QUERY);
    expect(parseQuery(`#/?q=${'a'.repeat(5000)}`).q).toHaveLength(200);
  });
  it('a header click sorts ascending, a second flips', () => {
    const a = toggleSort(DEFAULT_QUERY, 'memory');
    expect([a.sort, a.dir]).toEqual(['memory', 'asc']);
    const b = toggleSort(a, 'memory');
    expect([b.sort, b.dir]).toEqual(['memory', 'desc']);
    expect(toggleSort(b, 'port').dir).toBe('asc');
  });
});

describe('the rows shown', () => {
  const apps = [
    app('main', { display_name: 'Main', status: 'running', cpu_percent: 5, memory_bytes: 300, port: 13001 }),
    app('shop', { display_name: 'Shop', status: 'running', cpu_percent: 20, memory_bytes: 100, port: 14002, domain: 'shop.example.com', pinned: true }),
    app('blog', { display_name: 'blog', status: 'error', port: 14001, start_mode: 'with-main' }),
    app('wiki', { display_name: 'Wiki', status: 'backoff', port: 14003, runtime: 'node' }),
    app('crm', { display_name: 'CRM', status: 'stopped', port: 14000 }),
  ];
  it('filters by text across name, display name, domain, port and runtime, ignoring case', () => {
    expect(names(visibleRows(apps, q({ q: 'SHOP' }), rules))).toEqual(['shop']);
    expect(names(visibleRows(apps, q({ q: 'example.com' }), rules))).toEqual(['shop']);
    expect(names(visibleRows(apps, q({ q: '14001' }), rules))).toEqual(['blog']);
    expect(names(visibleRows(apps, q({ q: 'node' }), rules))).toEqual(['wiki']);
    expect(names(visibleRows(apps, q({ q: '  crm ' }), rules))).toEqual(['crm']);
    expect(visibleRows(apps, q({ q: 'nothing-like-it' }), rules)).toEqual([]);
  });
  it('filters by status and by the engine’s groups', () => {
    expect(names(visibleRows(apps, q({ status: 'running' }), rules))).toEqual(['main', 'shop']);
    expect(names(visibleRows(apps, q({ status: 'failing' }), rules))).toEqual(['blog', 'wiki']);
    expect(names(visibleRows(apps, q({ status: 'active' }), rules))).toEqual(['main', 'shop', 'wiki']);
    expect(names(visibleRows(apps, q({ status: 'running', q: 'shop' }), rules))).toEqual(['shop']);
  });
  it('sorts by every column, both ways; empty values last either way', () => {
    expect(names(visibleRows(apps, q(), rules))).toEqual(['blog', 'crm', 'main', 'shop', 'wiki']);
    expect(names(visibleRows(apps, q({ dir: 'desc' }), rules))).toEqual(['wiki', 'shop', 'main', 'crm', 'blog']);
    expect(names(visibleRows(apps, q({ sort: 'cpu', dir: 'desc' }), rules))).toEqual(['shop', 'main', 'blog', 'crm', 'wiki']);
    expect(names(visibleRows(apps, q({ sort: 'cpu' }), rules))).toEqual(['main', 'shop', 'blog', 'crm', 'wiki']);
    expect(names(visibleRows(apps, q({ sort: 'memory' }), rules))).toEqual(['shop', 'main', 'blog', 'crm', 'wiki']);
    expect(names(visibleRows(apps, q({ sort: 'port' }), rules))).toEqual(['main', 'crm', 'blog', 'shop', 'wiki']);
    // Status in the engine's order: stopped, starting, running, stopping, upgrading, backoff, error.
    expect(names(visibleRows(apps, q({ sort: 'status' }), rules))).toEqual(['crm', 'main', 'shop', 'wiki', 'blog']);
    expect(names(visibleRows(apps, q({ sort: 'domain', dir: 'desc' }), rules))[0]).toBe('shop');
    expect(names(visibleRows(apps, q({ sort: 'domain' }), rules))[0]).toBe('shop');
    expect(names(visibleRows(apps, q({ sort: 'pinned', dir: 'desc' }), rules))[0]).toBe('shop');
    expect(names(visibleRows(apps, q({ sort: 'start_mode' }), rules))).toEqual(['crm', 'main', 'shop', 'wiki', 'blog']);
    expect(names(visibleRows(apps, q({ sort: 'urls' }), rules))).toEqual(['blog', 'crm', 'main', 'shop', 'wiki']);
  });
  it('reads numbers in names as numbers', () => {
    const three = [app('a10', { display_name: 'App 10' }), app('a2', { display_name: 'App 2' }), app('a1', { display_name: 'app 1' })];
    expect(names(visibleRows(three, q(), rules))).toEqual(['a1', 'a2', 'a10']);
  });
  it('never changes the list it was given', () => {
    const before = names(apps);
    visibleRows(apps, q({ sort: 'cpu', dir: 'desc' }), rules);
    expect(names(apps)).toEqual(before);
  });
  it('the header checkbox says all, some or none of the rows shown', () => {
    const shown = visibleRows(apps, q({ status: 'failing' }), rules);
    expect(selectionState(shown, {})).toBe('none');
    expect(selectionState(shown, { blog: true, shop: true })).toBe('some');
    expect(selectionState(shown, { blog: true, wiki: true })).toBe('all');
  });
  it('sorts a thousand apps', () => {
    const many = Array.from({ length: 1000 }, (_, i) => app(`a_${i}`, { cpu_percent: (i * 7919) % 100, port: 20000 + i }));
    const rows = visibleRows(many, q({ sort: 'cpu', dir: 'desc' }), rules);
    expect(rows).toHaveLength(1000);
    for (let i = 1; i < rows.length; i++) expect(rows[i - 1].cpu_percent! >= rows[i].cpu_percent!).toBe(true);
  });
});

describe('bulk actions', () => {
  it('skip the apps an action does not apply to, by the engine’s rules', () => {
    expect(bulkSkip('start', 'running', rules)).toBe('not started: it is running');
    expect(bulkSkip('start', 'stopped', rules)).toBeNull();
    expect(bulkSkip('stop', 'stopped', rules)).toBe('not stopped: it is stopped');
    expect(bulkSkip('stop', 'backoff', rules)).toBeNull();
    expect(bulkSkip('restart', 'stopped', rules)).toBeNull();
  });
  it('call once per app, a few at a time, and report each outcome, failures included', async () => {
    let inFlight = 0;
    let most = 0;
    const calls: string[] = [];
    const heard: Array<[string, Outcome]> = [];
    const names = Array.from({ length: 10 }, (_, i) => `a${i}`);
    const out = await runBulk(
      names,
      async (n) => {
        calls.push(n);
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
        if (n === 'a3') return 'the port is taken';
        if (n === 'a7') throw new Error('network down');
        return null;
      },
      (n, o) => heard.push([n, o]),
      3,
    );
    expect(calls.sort()).toEqual([...names].sort());
    expect(most).toBe(3);
    expect(heard).toHaveLength(10);
    expect(out.get('a3')).toEqual({ state: 'failed', detail: 'the port is taken' });
    expect(out.get('a7')).toEqual({ state: 'failed', detail: 'network down' });
    expect(out.get('a0')).toEqual({ state: 'done' });
    expect(bulkSummary('stop', out.values())).toBe('Stopped 8 apps, 2 failed');
  });
  it('an empty selection calls nothing', async () => {
    const out = await runBulk([], async () => {
      throw new Error('called');
    }, () => {}, 4);
    expect(out.size).toBe(0);
  });
  it('sum up in one line', () => {
    const o: Outcome[] = [{ state: 'done' }, { state: 'skipped', detail: 'x' }, { state: 'pending' }];
    expect(bulkSummary('start', o)).toBe('Started 1 app, 1 skipped, 1 on the way');
    expect(bulkSummary('restart', [])).toBe('Restarted 0 apps');
  });
});
