// Every call the UI makes to the engine, in one place. Routes marked PLANNED are being added by
// other work; each answers `null` (or sets a "missing" flag) when the engine says 404, so the UI
// hides what needs it instead of breaking.
//
// Auth: in the browser the engine's HttpOnly cookie rides along (same origin); the desktop shell
// may instead set `window.__HANGAR__ = { api: 'http://127.0.0.1:PORT', token }`.

import { followStream, type SseMessage, type StreamHandle } from './sse';
import type { LogLine } from './logbuffer';
import { toSeconds } from './format';
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
  host?: HostUsage; // PLANNED (optional)
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
  created_at: string;
  idle_timeout?: number | null; // PLANNED (idle timeout): shown in the form when present
  /** Orders views of one app from one engine: the higher is the newer. */
  version?: number;
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
}

export interface EditBody {
  display_name?: string;
  start_mode?: string;
  port?: number;
  domain?: string | null;
  pinned?: boolean;
  env?: Record<string, string>;
  idle_timeout?: number | null;
}

export interface DeleteReport {
  name: string;
  dropped: string[];
  kept: string[];
}

export interface HostUsage {
  cpu_percent: number | null;
  memory_used_bytes: number | null;
  memory_total_bytes: number | null;
}

export interface MetricPoint {
  t: number; // unix seconds
  cpu: number | null;
  mem: number | null;
}

export interface MetricMark {
  t: number;
  kind: string; // start | stop | crash | restart | …
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
  token?: string;
}
const injected: Injected = (globalThis as unknown as { __HANGAR__?: Injected }).__HANGAR__ ?? {};
const BASE = `${injected.api ?? ''}/api/v1`;
const authHeaders = (): Record<string, string> => (injected.token ? { Authorization: `Bearer ${injected.token}` } : {});

/** A path segment, like the CLI's `seg`. */
export const seg = (s: string) => encodeURIComponent(s);

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let resp: Response;
  try {
    resp = await fetch(BASE + path, {
      method,
      headers: { ...authHeaders(), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      credentials: 'same-origin',
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

/** Like `call`, but a 404 (the route does not exist on this engine) answers null. */
async function optional<T>(method: string, path: string, body?: unknown): Promise<T | null> {
  try {
    return await call<T>(method, path, body);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && (e.code === 'not_found' || e.code === 'http_404') && /no API route|^$|Not Found/i.test(e.message)) return null;
    throw e;
  }
}

/** Whether a route exists: GET on a POST-only route answers 405, on no route 404. */
export async function routeExists(path: string): Promise<boolean> {
  try {
    const r = await fetch(BASE + path, { headers: authHeaders(), credentials: 'same-origin', cache: 'no-store' });
    return r.status !== 404;
  } catch {
    return false;
  }
}

// ---- today's routes -----------------------------------------------------------------------

export const engine = () => call<EngineInfo>('GET', '/engine');
/** The rules of each app status, as the engine defines them. */
export const statuses = async () => (await call<{ statuses: StatusRule[] }>('GET', '/statuses')).statuses;
export const listApps = async () => (await call<{ apps: AppView[] }>('GET', '/apps')).apps;
export const getApp = (name: string) => call<AppView>('GET', `/apps/${seg(name)}`);
export const createApp = (body: CreateBody) => call<AppView>('POST', '/apps', body);
export const editApp = (name: string, body: EditBody) => call<AppView>('PATCH', `/apps/${seg(name)}`, body);
export const deleteApp = (name: string, dropDb: boolean) => call<DeleteReport>('DELETE', `/apps/${seg(name)}?drop_db=${dropDb}`);
export const startApp = (name: string) => call<AppView>('POST', `/apps/${seg(name)}/start`, {});
export const stopApp = (name: string) => call<AppView>('POST', `/apps/${seg(name)}/stop`, {});
export const restartApp = (name: string) => call<AppView>('POST', `/apps/${seg(name)}/restart`, {});
export const validateName = (name: string) => call<{ ok: boolean; message: string | null }>('GET', `/validate/name?name=${encodeURIComponent(name)}`);
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
    headers: authHeaders(),
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
    headers: authHeaders(),
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

// ---- routes an older engine may lack; each degrades on 404 ---------------------------------

/** GET /apps/{name}/metrics?range=5m|1h|24h|7d. null when the engine has no history. */
export async function metricsHistory(name: string, range: Range): Promise<MetricsHistory | null> {
  const raw = await optional<unknown>('GET', `/apps/${seg(name)}/metrics?range=${range}`);
  return raw === null ? null : normalizeHistory(raw);
}

/** Accepts the shapes the history route may take: `{points|samples: [{ts|t, cpu_percent|cpu|cpu_avg,
 *  memory_bytes|memory|mem_avg|memory_avg}]}` or columns `{ts: [], cpu: [], memory: []}`, with marks
 *  in `events|marks: [{ts|t, kind|type|event, message|detail}]`. */
export function normalizeHistory(raw: unknown): MetricsHistory {
  const o = (raw ?? {}) as Record<string, unknown>;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const points: MetricPoint[] = [];
  const list = (o.points ?? o.samples ?? o.history) as unknown;
  if (Array.isArray(list)) {
    for (const p of list as Array<Record<string, unknown>>) {
      const t = toSeconds(p.ts ?? p.t ?? p.time);
      if (t === null) continue;
      points.push({
        t,
        cpu: num(p.cpu_percent ?? p.cpu ?? p.cpu_avg),
        mem: num(p.memory_bytes ?? p.memory ?? p.mem_avg ?? p.memory_avg ?? p.mem),
      });
    }
  } else if (Array.isArray(o.ts)) {
    const ts = o.ts as unknown[];
    const cpu = (o.cpu ?? o.cpu_percent ?? []) as unknown[];
    const mem = (o.memory ?? o.memory_bytes ?? o.mem ?? []) as unknown[];
    ts.forEach((t, i) => {
      const s = toSeconds(t);
      if (s !== null) points.push({ t: s, cpu: num(cpu[i]), mem: num(mem[i]) });
    });
  }
  points.sort((a, b) => a.t - b.t);
  const marks: MetricMark[] = [];
  const ev = (o.events ?? o.marks ?? []) as unknown;
  if (Array.isArray(ev)) {
    for (const e of ev as Array<Record<string, unknown>>) {
      const t = toSeconds(e.ts ?? e.t ?? e.time);
      if (t === null) continue;
      marks.push({ t, kind: String(e.kind ?? e.type ?? e.event ?? 'event'), detail: e.message != null || e.detail != null ? String(e.message ?? e.detail) : undefined });
    }
  }
  return { points, marks };
}

/** GET /host → {cpu_percent, memory_used_bytes, memory_total_bytes}. null when absent. */
export async function hostUsage(): Promise<HostUsage | null> {
  const raw = await optional<Record<string, unknown>>('GET', '/host');
  if (raw === null) return null;
  // The engine answers {host: {…}, sampler, …}; a bare figure object is read as well.
  const figures = (raw.host ?? raw) as Record<string, unknown> | null;
  return figures === null ? null : normalizeHost(figures);
}

export function normalizeHost(raw: Record<string, unknown>): HostUsage {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const mem = (raw.memory ?? {}) as Record<string, unknown>;
  return {
    cpu_percent: num(raw.cpu_percent ?? raw.cpu),
    memory_used_bytes: num(raw.memory_used_bytes ?? raw.used_memory_bytes ?? mem.used_bytes ?? mem.used),
    memory_total_bytes: num(raw.memory_total_bytes ?? raw.total_memory_bytes ?? mem.total_bytes ?? mem.total),
  };
}

export interface MetricsSample {
  host: HostUsage | null;
  apps: Array<{ name: string; cpu_percent: number | null; memory_bytes: number | null }>;
}

/** GET /metrics/stream → SSE, event `sample`, data `{ts, host?: {...}, apps: [{name,
 *  cpu_percent, memory_bytes}] | {name: {cpu_percent, memory_bytes}}}`. `onMissing` on 404. */
export function metricsStream(onSample: (s: MetricsSample) => void, onMissing: () => void): StreamHandle {
  return followStream(`${BASE}/metrics/stream`, {
    headers: authHeaders(),
    onMissing,
    onMessage(msgs) {
      for (const m of msgs) {
        // The engine sends `tick` ({t, host, apps: {name: usage}}) and `event` (timeline marks).
        if (m.event !== 'tick' && m.event !== 'sample' && m.event !== 'metrics' && m.event !== 'message') continue;
        try {
          const d = JSON.parse(m.data) as Record<string, unknown>;
          const appsRaw = d.apps ?? {};
          const apps = Array.isArray(appsRaw)
            ? (appsRaw as Array<Record<string, unknown>>).map((a) => ({
                name: String(a.name),
                cpu_percent: (a.cpu_percent as number) ?? null,
                memory_bytes: (a.memory_bytes as number) ?? null,
              }))
            : Object.entries(appsRaw as Record<string, Record<string, unknown>>).map(([name, a]) => ({
                name,
                cpu_percent: (a.cpu_percent as number) ?? null,
                memory_bytes: (a.memory_bytes as number) ?? null,
              }));
          onSample({ host: d.host ? normalizeHost(d.host as Record<string, unknown>) : null, apps });
        } catch {
          /* skip */
        }
      }
    },
  });
}

/** GET /apps/{name}/logs/search?q=&regex=&limit= → {lines: [LogLine]}. null when absent. */
export async function searchLogs(name: string, q: string, regex: boolean, limit = 1000): Promise<LogLine[] | null> {
  const r = await optional<{ lines?: LogLine[]; matches?: LogLine[] }>(
    'GET',
    `/apps/${seg(name)}/logs/search?q=${encodeURIComponent(q)}&regex=${regex}&limit=${limit}`,
  );
  return r === null ? null : (r.lines ?? r.matches ?? []);
}

/** POST /db/test {url} → {ok, message}; an error answer counts as a failed test. null when absent. */
export async function testConnection(url: string): Promise<{ ok: boolean; message: string } | null> {
  try {
    const r = await optional<{ ok?: boolean; message?: string | null }>('POST', '/db/test', { url });
    if (r === null) return null;
    return { ok: r.ok !== false, message: r.message ?? (r.ok !== false ? 'connected' : 'failed') };
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
export const canUpgrade = () => routeExists('/apps/main/upgrade');
export const canTestConnection = () => routeExists('/db/test');

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
  rows: number;
  created: ImportRow[];
  skipped: ImportRow[];
  conflicts: ImportRow[];
}
export const importNocobase = (from: string, dryRun: boolean) =>
  call<ImportReport>('POST', '/import/nocobase', { from, dry_run: dryRun });
