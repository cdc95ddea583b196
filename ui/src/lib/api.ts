// Every call the UI makes to the engine, in one place, with the shapes the engine serves (the
// Rust side's types: src/api/types.rs and the engine's views and reports).
//
// Auth: a panel session (auth.ts: a login link's code traded for it, kept in this origin's
// localStorage) sent as `Authorization: Bearer`; no cookie is sent. A page served elsewhere may
// set `window.__HANGAR__ = { api: 'http://127.0.0.1:PORT' }` to name the engine's origin.

import { followStream, type SseMessage, type StreamHandle } from './sse';
import { authHeader, exchangeCode, loginCodeOf, pageStorage, readSession, type LoginOutcome } from './auth';
import type { LogLine } from './logbuffer';
import type { StatusRule } from './statuses';

export interface EngineInfo {
  version: string;
  pid: number;
  home: string;
  proxy_port: number;
  api_port: number;
  main_runtime: string;
  runtimes: string[];
  data_service: null | 'postgres' | 'mysql' | string;
  /** How many starts or stops a bulk action runs at once: the engine's own figure. */
  start_parallel?: number;
}

export type Status = 'stopped' | 'starting' | 'running' | 'stopping' | 'upgrading' | 'backoff' | 'error';

export interface AppView {
  name: string;
  display_name: string;
  status: Status | string;
  pid: number | null;
  port: number;
  start_mode: 'with-main' | 'on-visit' | string;
  domain: string | null;
  pinned: boolean;
  url: string;
  urls: string[];
  db: string;
  cpu_percent: number | null;
  memory_bytes: number | null;
  uptime_seconds: number | null;
  restarts: number;
  error: string | null;
  runtime: string;
  desired: string;
  env: Record<string, string>;
  progress: string | null;
  /** Output lines that never reached the log file (the writer fell behind, or writes failed). */
  log_lines_lost: number;
  created_at: string;
  /** What the operator should know about a create; absent when there is nothing. */
  notices?: string[];
  /** Idle stop in seconds (on-visit apps); null: never. */
  idle_timeout: number | null;
  /** Orders views of one app from one engine: the higher is the newer. */
  version: number;
  /** Memory limit in bytes (the app's own, else its runtime's); null: none. */
  memory_max?: number | null;
  /** What enforces it: the sampler, and the kernel's cgroup where Hangar can make one. */
  memory_enforced_by?: string | null;
  /** Restarts for going over the memory limit since the engine started. */
  memory_restarts?: number;
  /** CPU priority (nice) of its process group; null: 0. */
  nice?: number | null;
  /** Why Hangar itself last stopped or restarted it (memory limit, memory budget, idle). */
  reason?: string | null;
  /** Its own memory limit (bytes) and nice value, without its runtime's; absent: none. */
  own_memory_max?: number;
  own_nice?: number;
}

/** GET /host: the machine's figures and, when `memory_budget` is set, the budget and use. */
export interface HostInfo {
  host: HostUsage | null;
  sampler: string;
  memory_budget?: { budget_bytes: number; used_bytes: number } | null;
}

export interface CreateBody {
  name: string;
  display_name?: string;
  start_mode?: string;
  port?: number;
  domain?: string;
  pinned?: boolean;
  db?: string;
  runtime?: string;
  env?: Record<string, string>;
  idle_timeout?: number | null;
  /** A size (`600M`) or bytes; absent: the runtime's. */
  memory_max?: string | number;
  /** -20..19; absent: the runtime's. */
  nice?: number;
}

export interface EditBody {
  display_name?: string;
  start_mode?: string;
  port?: number;
  domain?: string | null;
  pinned?: boolean;
  env?: Record<string, string>;
  idle_timeout?: number | null;
  /** A size (`600M`) or bytes; `0` removes the app's own limit. */
  memory_max?: string | number;
  /** -20..19; `0` removes the app's own value. */
  nice?: number;
}

export interface DeleteReport {
  name: string;
  dropped: string[];
  kept: string[];
}

/** The whole machine. */
export interface HostUsage {
  /** Busy share of all cores together (100 = the whole machine busy). */
  cpu_percent: number;
  cpus: number;
  memory_used_bytes: number;
  memory_total_bytes: number;
}

/** One app's figures. */
export interface Usage {
  cpu_percent: number;
  memory_bytes: number;
}

/** What GET /apps/{name}/metrics answers: times in unix milliseconds. */
export interface AppMetrics {
  name: string;
  range_seconds: number;
  /** `1s` (raw samples, older parts as minutes) or `1m`. */
  resolution: string;
  points: Array<{ t: number; cpu: number; cpu_min: number; cpu_max: number; mem: number; mem_min: number; mem_max: number }>;
  events: Array<{ t: number; kind: string; detail: string | null }>;
  /** The figures of now (the machine's for `@host`); null until sampled. */
  current: Usage | HostUsage | null;
}

/** One tick of GET /metrics/stream (event `tick`). */
export interface Snapshot {
  t: number; // unix milliseconds
  host: HostUsage;
  apps: Record<string, Usage>;
}

/** What GET /apps/{name}/logs/search answers. */
export interface SearchResult {
  lines: LogLine[];
  /** More lines matched than the limit; the oldest were left out. */
  truncated: boolean;
  files_searched: number;
}

/** A check's verdict (GET /validate/name, POST /db/test). */
export interface Verdict {
  ok: boolean;
  message: string | null;
}

export interface MetricPoint {
  t: number; // unix seconds
  cpu: number | null;
  mem: number | null;
}

export interface MetricMark {
  t: number; // unix seconds
  kind: string; // start | stop | crash | restart
  detail?: string;
}

export interface MetricsHistory {
  points: MetricPoint[];
  marks: MetricMark[];
}

export type Range = '5m' | '1h' | '24h' | '7d';
export const RANGES: Array<{ id: Range; label: string; seconds: number }> = [
  { id: '5m', label: '5 min', seconds: 300 },
  { id: '1h', label: '1 h', seconds: 3600 },
  { id: '24h', label: '24 h', seconds: 86400 },
  { id: '7d', label: '7 d', seconds: 604800 },
];

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    public field: string | null,
    message: string,
  ) {
    super(message);
  }
}

interface Injected {
  api?: string;
}
const injected: Injected = (globalThis as unknown as { __HANGAR__?: Injected }).__HANGAR__ ?? {};
const ORIGIN = injected.api ?? '';
const BASE = `${ORIGIN}/api/v1`;
const authHeaders = (): Record<string, string> => authHeader(readSession(pageStorage()));

/** On a login link (`/login?code=…`): its code, and the address bar left without it (`/` and
 *  the link's `#/route`). Called before the router reads the address. `null`: no login link. */
export function takeLoginCode(
  loc: Pick<Location, 'pathname' | 'search' | 'hash'> | undefined = (globalThis as unknown as { location?: Location }).location,
  hist: Pick<History, 'replaceState'> | undefined = (globalThis as unknown as { history?: History }).history,
): string | null {
  if (!loc || loc.pathname !== '/login') return null;
  const code = loginCodeOf(loc);
  hist?.replaceState(null, '', `/${loc.hash}`);
  return code;
}

/** Trade a login link's code for a session (kept for every call after). `null`: no code. */
export async function completeLogin(code: string | null): Promise<LoginOutcome | null> {
  return code === null ? null : exchangeCode(code, pageStorage(), ORIGIN);
}

/** A path segment, like the CLI's `seg`. */
export const seg = (s: string) => encodeURIComponent(s);

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let resp: Response;
  try {
    resp = await fetch(BASE + path, {
      method,
      headers: { ...authHeaders(), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', null, `cannot reach the engine: ${(e as Error).message}`);
  }
  const text = await resp.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!resp.ok) {
    const err = (json as { error?: { code?: string; field?: string | null; message?: string } } | null)?.error;
    throw new ApiError(resp.status, err?.code ?? `http_${resp.status}`, err?.field ?? null, err?.message ?? (text || resp.statusText));
  }
  return json as T;
}

// ---- the apps ----------------------------------------------------------------------------

export const engine = () => call<EngineInfo>('GET', '/engine');
/** The rules of each app status, as the engine defines them. */
export const statuses = async () => (await call<{ statuses: StatusRule[] }>('GET', '/statuses')).statuses;
export const listApps = async () => (await call<{ apps: AppView[] }>('GET', '/apps')).apps;
export const hostInfo = () => call<HostInfo>('GET', '/host');
export const getApp = (name: string) => call<AppView>('GET', `/apps/${seg(name)}`);
export const createApp = (body: CreateBody) => call<AppView>('POST', '/apps', body);
export const editApp = (name: string, body: EditBody) => call<AppView>('PATCH', `/apps/${seg(name)}`, body);
export const deleteApp = (name: string, dropDb: boolean) => call<DeleteReport>('DELETE', `/apps/${seg(name)}?drop_db=${dropDb}`);
export const startApp = (name: string) => call<AppView>('POST', `/apps/${seg(name)}/start`, {});
export const stopApp = (name: string) => call<AppView>('POST', `/apps/${seg(name)}/stop`, {});
export const restartApp = (name: string) => call<AppView>('POST', `/apps/${seg(name)}/restart`, {});
export const validateName = (name: string) => call<Verdict>('GET', `/validate/name?name=${encodeURIComponent(name)}`);
export const logs = async (name: string, n: number) => (await call<{ lines: LogLine[] }>('GET', `/apps/${seg(name)}/logs?n=${n}`)).lines;

export interface EventHandlers {
  app(v: AppView): void;
  removed(name: string): void;
  resync(): void;
  open(): void;
  error(status: number | null, message: string): void;
}

/** The engine's event stream (`app`, `removed`, `resync`). */
export function events(h: EventHandlers): StreamHandle {
  return followStream(`${BASE}/events`, {
    headers: authHeaders,
    onOpen: h.open,
    onError: h.error,
    onMessage(msgs: SseMessage[]) {
      for (const m of msgs) {
        try {
          if (m.event === 'app') h.app(JSON.parse(m.data));
          else if (m.event === 'removed') h.removed(JSON.parse(m.data).name);
          else if (m.event === 'resync') h.resync();
        } catch {
          /* a malformed event: ignore it */
        }
      }
    },
  });
}

/** An app's live log: the last `n` lines, then each new one. */
export function followLogs(
  name: string,
  n: number,
  onLines: (l: LogLine[]) => void,
  onState: (s: { connected: boolean; message?: string }) => void,
): StreamHandle {
  return followStream(`${BASE}/apps/${seg(name)}/logs/follow?n=${n}`, {
    headers: authHeaders,
    onOpen: () => onState({ connected: true }),
    onError: (_s, message) => onState({ connected: false, message }),
    onMissing: () => onState({ connected: false, message: `no app named ${name}` }),
    onMessage(msgs) {
      const lines: LogLine[] = [];
      for (const m of msgs) {
        if (m.event !== 'line') continue;
        try {
          lines.push(JSON.parse(m.data));
        } catch {
          /* skip */
        }
      }
      if (lines.length) onLines(lines);
    },
  });
}

// ---- figures, log search, connection test -------------------------------------------------

/** GET /apps/{name}/metrics?range=5m|1h|24h|7d: the history and its marks, in seconds. */
export async function metricsHistory(name: string, range: Range): Promise<MetricsHistory> {
  return toHistory(await call<AppMetrics>('GET', `/apps/${seg(name)}/metrics?range=${range}`));
}

/** The engine's history as the charts take it: unix seconds, oldest first. */
export function toHistory(m: AppMetrics): MetricsHistory {
  const points = m.points.map((p) => ({ t: p.t / 1000, cpu: p.cpu, mem: p.mem })).sort((a, b) => a.t - b.t);
  const marks = m.events.map((e) => ({ t: e.t / 1000, kind: e.kind, detail: e.detail ?? undefined }));
  return { points, marks };
}

export interface MetricsSample {
  host: HostUsage;
  apps: Array<{ name: string; cpu_percent: number; memory_bytes: number }>;
}

/** GET /metrics/stream: each `tick` (every app's and the machine's figures); the timeline's
 *  `event`s are not read here (the store marks what the event stream shows). */
export function metricsStream(onSample: (s: MetricsSample) => void): StreamHandle {
  return followStream(`${BASE}/metrics/stream`, {
    headers: authHeaders,
    onMessage(msgs) {
      for (const m of msgs) {
        if (m.event !== 'tick') continue;
        try {
          const d = JSON.parse(m.data) as Snapshot;
          const apps = Object.entries(d.apps).map(([name, a]) => ({ name, cpu_percent: a.cpu_percent, memory_bytes: a.memory_bytes }));
          onSample({ host: d.host, apps });
        } catch {
          /* skip */
        }
      }
    },
  });
}

/** GET /apps/{name}/logs/search?q=&regex=&limit=: over the current and rotated files. */
export async function searchLogs(name: string, q: string, regex: boolean, limit = 1000): Promise<LogLine[]> {
  const r = await call<SearchResult>('GET', `/apps/${seg(name)}/logs/search?q=${encodeURIComponent(q)}&regex=${regex}&limit=${limit}`);
  return r.lines;
}

/** POST /db/test {url} → {ok, message}; an error answer counts as a failed test. */
export async function testConnection(url: string): Promise<{ ok: boolean; message: string }> {
  try {
    const r = await call<Verdict>('POST', '/db/test', { url });
    return { ok: r.ok, message: r.message ?? (r.ok ? 'connected' : 'failed') };
  } catch (e) {
    if (e instanceof ApiError) return { ok: false, message: e.message };
    throw e;
  }
}

/** What POST /apps/{name}/upgrade answers; a failed upgrade is a 200 with result "failed". */
export interface UpgradeReport {
  name: string;
  result: 'upgraded' | 'up-to-date' | 'failed';
  from: string | null;
  to: string | null;
  status: string;
  error: string | null;
}
export async function upgradeApp(name: string): Promise<UpgradeReport> {
  const r = await call<UpgradeReport>('POST', `/apps/${seg(name)}/upgrade`, {});
  if (r.result === 'failed') throw new Error(r.error ?? `${name}: the upgrade failed`);
  return r;
}

// ---- backups, restores, legacy import -------------------------------------------------------

export interface BackupInfo {
  file: string;
  name: string;
  app: string;
  reason: 'manual' | 'before-upgrade' | 'before-delete' | string;
  automatic: boolean;
  created_at: string;
  size: number;
}

export interface JobState {
  id: string;
  kind: 'backup' | 'restore' | string;
  app: string;
  state: 'running' | 'done' | 'failed' | string;
  step: string;
  bytes: number;
  total_bytes: number | null;
  result: unknown;
  error: string | null;
  started_at: string;
}

export const listBackups = async (app?: string) =>
  (await call<{ backups: BackupInfo[]; keep_days: number }>('GET', `/backups${app ? `?app=${encodeURIComponent(app)}` : ''}`));
export const getJob = (id: string) => call<JobState>('GET', `/jobs/${seg(id)}`);

/** Poll a job until it ends; `onProgress` sees each state. Resolves with its result. */
export async function waitJob(job: JobState, onProgress: (s: JobState) => void, everyMs = 200): Promise<unknown> {
  for (;;) {
    const s = await getJob(job.id);
    onProgress(s);
    if (s.state === 'done') return s.result;
    if (s.state === 'failed') throw new Error(s.error ?? 'failed');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const startBackup = async (name: string) =>
  (await call<{ job: JobState }>('POST', `/apps/${seg(name)}/backup`, {})).job;
/** `file`: a name from the backups list (or an absolute path); `as`: a new name, or none for the archived one. */
export const startRestore = async (file: string, as?: string) =>
  (await call<{ job: JobState }>('POST', '/restore', { file, as: as || null })).job;

export interface ImportRow {
  name: string;
  display_name: string;
  start_mode: string;
  domain: string | null;
  pinned: boolean;
  db: string;
  reason: string | null;
}
export interface ImportReport {
  source: string;
  dry_run: boolean;
  /** The runtime the imported apps run (the hangar.toml one built on the `nocobase` preset). */
  runtime: string;
  rows: number;
  created: ImportRow[];
  skipped: ImportRow[];
  conflicts: ImportRow[];
}
export const importNocobase = (from: string, dryRun: boolean) =>
  call<ImportReport>('POST', '/import/nocobase', { from, dry_run: dryRun });
