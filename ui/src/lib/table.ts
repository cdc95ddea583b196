// The apps table at many apps: what the operator asked to see (a text filter, a status filter, a
// sort column and direction), kept in the URL's hash query so a reload or a shared link shows the
// same view (`#/?q=shop&status=running&sort=cpu&dir=desc`; defaults are left out), and the pure
// functions that turn the apps into the rows shown. Bulk actions over a selection are here too:
// one call per app through `run` (pages/actions.ts), a few at a time, each app's outcome kept.

import type { AppView } from './api';
import type { StatusRules } from './statuses';

/** Every column the table sorts by (the action column does not sort). */
export const SORT_KEYS = ['name', 'status', 'cpu', 'memory', 'port', 'urls', 'start_mode', 'domain', 'pinned'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export type SortDir = 'asc' | 'desc';

/** Status filter groups, besides each status by name: the engine's own rules of a status. */
export const STATUS_GROUPS = ['active', 'failing'] as const;

export interface TableQuery {
  /** Text filter: matched, case-insensitively, against name, display name, domain, port, runtime. */
  q: string;
  /** '' (all), a status name, or a group of `STATUS_GROUPS`. */
  status: string;
  sort: SortKey;
  dir: SortDir;
}

export const DEFAULT_QUERY: TableQuery = { q: '', status: '', sort: 'name', dir: 'asc' };

/** Longest text filter kept from a URL (a pasted link cannot make every row match a huge string). */
const MAX_Q = 200;

/** The query of a hash such as `#/?q=a&sort=cpu`; anything unknown falls back to the default. */
export function parseQuery(hash: string): TableQuery {
  const i = hash.indexOf('?');
  const p = new URLSearchParams(i >= 0 ? hash.slice(i + 1) : '');
  const sort = p.get('sort') ?? '';
  const dir = p.get('dir');
  return {
    q: (p.get('q') ?? '').slice(0, MAX_Q),
    status: /^[a-z_-]{1,32}$/.test(p.get('status') ?? '') ? (p.get('status') as string) : '',
    sort: (SORT_KEYS as readonly string[]).includes(sort) ? (sort as SortKey) : DEFAULT_QUERY.sort,
    dir: dir === 'desc' ? 'desc' : 'asc',
  };
}

/** The hash of the apps page for a query: `#/` when everything is the default. */
export function queryHash(t: TableQuery): string {
  const p = new URLSearchParams();
  if (t.q) p.set('q', t.q);
  if (t.status) p.set('status', t.status);
  if (t.sort !== DEFAULT_QUERY.sort) p.set('sort', t.sort);
  if (t.dir !== DEFAULT_QUERY.dir) p.set('dir', t.dir);
  const s = p.toString();
  return s ? `#/?${s}` : '#/';
}

/** A click on a column's header: a new column sorts ascending, the same one flips. */
export function toggleSort(t: TableQuery, key: SortKey): TableQuery {
  if (t.sort === key) return { ...t, dir: t.dir === 'asc' ? 'desc' : 'asc' };
  return { ...t, sort: key, dir: 'asc' };
}

/** Whether an app passes the status filter. */
export function statusMatches(status: string, filter: string, rules: StatusRules): boolean {
  if (!filter) return true;
  if (filter === 'active') return rules.active(status);
  if (filter === 'failing') return rules.failing(status);
  return status === filter;
}

/** Whether an app passes the text filter (already lowercased and trimmed). */
export function textMatches(a: AppView, needle: string): boolean {
  if (!needle) return true;
  return (
    a.name.toLowerCase().includes(needle) ||
    a.display_name.toLowerCase().includes(needle) ||
    (a.domain ?? '').toLowerCase().includes(needle) ||
    (a.runtime ?? '').toLowerCase().includes(needle) ||
    String(a.port).includes(needle)
  );
}

type Key = string | number | null;

/** The value a column sorts by; null sorts last in both directions. */
export function sortValue(a: AppView, key: SortKey, rules: StatusRules): Key {
  switch (key) {
    case 'name':
      return a.display_name.toLowerCase();
    case 'status':
      return rules.rank(a.status);
    case 'cpu':
      return a.cpu_percent;
    case 'memory':
      return a.memory_bytes;
    case 'port':
      return a.port;
    case 'urls':
      return visitUrl(a);
    case 'start_mode':
      return a.start_mode;
    case 'domain':
      return a.domain;
    case 'pinned':
      return a.pinned ? 1 : 0;
  }
}

/**
 * The one address the table shows for an app: the one it is visited at. Its domain's URL when it
 * has a domain, else the first of its URLs (a sub-app's own origin, `NAME.localhost`; the main
 * app's proxy address). The app's page lists the others.
 */
export function visitUrl(a: Pick<AppView, 'domain' | 'urls' | 'url'>): string {
  if (a.domain) {
    const host = a.domain.toLowerCase();
    const own = a.urls.find((u) => {
      try {
        return new URL(u).hostname === host;
      } catch {
        return false;
      }
    });
    if (own) return own;
  }
  return a.urls[0] ?? a.url;
}

/** A URL as the table writes it: without its scheme (the link keeps it). */
export function shortUrl(u: string): string {
  return u.replace(/^https?:\/\//, '');
}

/** Text compares as people read it: "App 2" before "App 10". One collator for every compare. */
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

function cmp(x: Key, y: Key): number {
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  return collator.compare(String(x), String(y));
}

/**
 * The rows to show: filtered, then sorted (stable: equal values keep the order of the app's
 * name). Reads only the fields the query needs, so a reactive caller recomputes only when one of
 * those changes (sorted by name, a CPU sample re-sorts nothing).
 */
export function visibleRows(apps: readonly AppView[], t: TableQuery, rules: StatusRules): AppView[] {
  const needle = t.q.trim().toLowerCase();
  const rows: Array<{ a: AppView; k: Key }> = [];
  for (const a of apps) {
    if (!statusMatches(a.status, t.status, rules) || !textMatches(a, needle)) continue;
    rows.push({ a, k: sortValue(a, t.sort, rules) });
  }
  const sign = t.dir === 'asc' ? 1 : -1;
  rows.sort((r, s) => {
    if (r.k === null || s.k === null) {
      if (r.k !== s.k) return r.k === null ? 1 : -1;
    } else {
      const c = cmp(r.k, s.k);
      if (c !== 0) return sign * c;
    }
    return r.a.name < s.a.name ? -1 : r.a.name > s.a.name ? 1 : 0;
  });
  return rows.map((r) => r.a);
}

/** The header checkbox over the rows shown: all of them selected, some, or none. */
export function selectionState(rows: readonly AppView[], selected: Readonly<Record<string, boolean>>): 'all' | 'some' | 'none' {
  let n = 0;
  for (const a of rows) if (selected[a.name]) n++;
  return n === 0 ? 'none' : n === rows.length ? 'all' : 'some';
}

export type BulkAction = 'start' | 'stop' | 'restart';

/** What became of one app in a bulk action. */
export type Outcome = { state: 'pending' | 'done' | 'skipped'; detail?: string } | { state: 'failed'; detail: string };

/** Whether `action` applies to an app in `status`; otherwise the app is skipped, with the reason. */
export function bulkSkip(action: BulkAction, status: string, rules: StatusRules): string | null {
  if (action === 'start' && !rules.canStart(status)) return `not started: it is ${status}`;
  if (action === 'stop' && !rules.canStop(status)) return `not stopped: it is ${status}`;
  return null;
}

/**
 * Run `action` over `names`: one call each through `call` (null = done, else the failure's
 * sentence), at most `parallel` at a time (the engine's `start_parallel`); `report` hears each
 * app's outcome as it lands. Resolves with every outcome once all have landed; never rejects.
 */
export async function runBulk(
  names: readonly string[],
  call: (name: string) => Promise<string | null>,
  report: (name: string, o: Outcome) => void,
  parallel: number,
): Promise<Map<string, Outcome>> {
  const out = new Map<string, Outcome>();
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++];
      let o: Outcome;
      try {
        const err = await call(name);
        o = err === null ? { state: 'done' } : { state: 'failed', detail: err };
      } catch (e) {
        o = { state: 'failed', detail: (e as Error).message };
      }
      out.set(name, o);
      report(name, o);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, names.length)) }, worker));
  return out;
}

/** One summary line of a bulk action's outcomes. */
export function bulkSummary(action: BulkAction, outcomes: Iterable<Outcome>): string {
  let done = 0;
  let skipped = 0;
  let failed = 0;
  let pending = 0;
  for (const o of outcomes) {
    if (o.state === 'done') done++;
    else if (o.state === 'skipped') skipped++;
    else if (o.state === 'failed') failed++;
    else pending++;
  }
  const verb = action === 'start' ? 'Started' : action === 'stop' ? 'Stopped' : 'Restarted';
  const parts = [`${verb} ${done} app${done === 1 ? '' : 's'}`];
  if (failed) parts.push(`${failed} failed`);
  if (skipped) parts.push(`${skipped} skipped`);
  if (pending) parts.push(`${pending} on the way`);
  return parts.join(', ');
}
