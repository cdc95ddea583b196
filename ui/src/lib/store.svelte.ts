// The live state every page reads: the engine, the apps (kept current by the event stream), host
// usage, and a short history of each app's CPU and memory for sparklines and the live chart.

import * as api from './api';
import type { AppView, EngineInfo, HostUsage, MetricMark } from './api';
import { SampleRing } from './samples';
import { ViewOrder } from './order';
import { StatusRules } from './statuses';

const SPARK_SAMPLES = 300; // 5 minutes at 1 Hz

class Store {
  engine = $state<EngineInfo | null>(null);
  /** The engine's rules of each app status (read once, before the apps). */
  statuses = $state(new StatusRules());
  apps = $state<AppView[]>([]);
  host = $state<HostUsage | null>(null);
  /** The memory budget and what the apps hold (GET /host, every few seconds); null: none. */
  budget = $state<{ budget_bytes: number; used_bytes: number } | null>(null);
  private budgetReadAt = 0;
  /** The event stream is connected. */
  connected = $state(false);
  /** The engine refused us (no session): the page shows how to log in. */
  unauthorized = $state(false);
  /** Why the login link just used did not log in (used, expired, another engine's). */
  loginError = $state<string | null>(null);
  loaded = $state(false);
  lastError = $state<string | null>(null);
  /** Bumped whenever samples change, so charts redraw. */
  tick = $state(0);
  /** Bumped per app when that app's samples change: a row's sparkline redraws for its own app only. */
  sampled = $state<Record<string, number>>({});

  readonly samples = new Map<string, SampleRing>();
  readonly hostSamples = new SampleRing(SPARK_SAMPLES);
  readonly marks = new Map<string, MetricMark[]>();
  /** When each running app started, in this clock (from its view's uptime), so uptime ticks. */
  private startedAt = new Map<string, number>();
  private order = new ViewOrder();
  private refreshing = false;
  private newsDuringRefresh = false;
  private started = false;

  /** `loginCode`: the code of the login link this page was opened with (api.takeLoginCode). */
  start(loginCode: string | null = null): void {
    if (this.started) return;
    this.started = true;
    void this.init(loginCode);
  }

  private async init(loginCode: string | null) {
    const login = await api.completeLogin(loginCode);
    if (login && !login.ok) this.loginError = login.message;
    try {
      this.engine = await api.engine();
      this.statuses = new StatusRules(await api.statuses());
      this.unauthorized = false;
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 401) {
        this.unauthorized = true;
        this.loaded = true;
        return;
      }
      this.lastError = (e as Error).message;
    }
    api.events({
      open: () => {
        this.connected = true;
        this.order.reset();
        this.lastError = null;
        void this.refresh();
      },
      error: (status, message) => {
        this.connected = false;
        if (status === 401) this.unauthorized = true;
        else this.lastError = `lost the engine's events (${message}); reconnecting…`;
      },
      app: (v) => this.upsert(v),
      removed: (name) => this.remove(name),
      resync: () => void this.refresh(),
    });
    api.metricsStream((s) => {
      const now = Date.now() / 1000;
      this.host = s.host;
      this.hostSamples.push(now, s.host.cpu_percent, s.host.memory_used_bytes);
      if (now - this.budgetReadAt >= 5) {
        this.budgetReadAt = now;
        api.hostInfo().then((h) => (this.budget = h.memory_budget ?? null), () => {});
      }
      // One pass to index the list: a tick carries every app, and a search per app would cost
      // apps × apps at a thousand apps.
      const at = new Map<string, number>();
      this.apps.forEach((x, i) => at.set(x.name, i));
      for (const a of s.apps) {
        const i = at.get(a.name) ?? -1;
        if (i >= 0) {
          this.apps[i].cpu_percent = a.cpu_percent;
          this.apps[i].memory_bytes = a.memory_bytes;
          // A view's uptime is its age when it was built: the tick carries it forward.
          const since = this.startedAt.get(a.name);
          if (since != null && this.apps[i].uptime_seconds != null) {
            this.apps[i].uptime_seconds = Math.max(0, Math.floor(now - since));
          }
        }
        this.sample(a.name, now, a.cpu_percent, a.memory_bytes);
      }
      this.tick++;
    });
  }

  /**
   * Read the whole list. News that comes while a list is on its way may be newer than it (an app
   * created or deleted meanwhile most of all): the list is then read once more, at most 3 times
   * in a row. Calls while a read runs join it.
   */
  async refresh(): Promise<void> {
    if (this.refreshing) {
      this.newsDuringRefresh = true;
      return;
    }
    this.refreshing = true;
    try {
      for (let i = 0; i < 3; i++) {
        this.newsDuringRefresh = false;
        if (!(await this.readList()) || !this.newsDuringRefresh) break;
      }
    } finally {
      this.refreshing = false;
    }
  }

  private async readList(): Promise<boolean> {
    try {
      const list = await api.listApps();
      const now = Date.now() / 1000;
      // An event that came while the list was on its way is newer than the list's view.
      this.apps = list.map((v) => {
        if (!this.order.accept(v)) return this.apps.find((x) => x.name === v.name) ?? v;
        this.observe(v, now);
        return v;
      });
      this.loaded = true;
      this.tick++;
      return true;
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 401) this.unauthorized = true;
      else this.lastError = (e as Error).message;
      return false;
    }
  }

  private sample(name: string, t: number, cpu: number | null, mem: number | null) {
    let r = this.samples.get(name);
    if (!r) {
      r = new SampleRing(SPARK_SAMPLES);
      this.samples.set(name, r);
    }
    r.push(t, cpu, mem);
    this.sampled[name] = (this.sampled[name] ?? 0) + 1;
  }

  /** Note a view: its usage as a sample, and restarts or crashes as marks. */
  private observe(v: AppView, now: number) {
    const prev = this.apps.find((x) => x.name === v.name);
    if (v.uptime_seconds != null) this.startedAt.set(v.name, now - v.uptime_seconds);
    else this.startedAt.delete(v.name);
    if (v.status === 'running' && (v.cpu_percent != null || v.memory_bytes != null)) this.sample(v.name, now, v.cpu_percent, v.memory_bytes);
    else if (v.status !== 'running') this.sample(v.name, now, null, null);
    if (prev) {
      const add = (kind: string, detail?: string) => {
        const list = this.marks.get(v.name) ?? [];
        list.push({ t: now, kind, detail });
        if (list.length > 200) list.shift();
        this.marks.set(v.name, list);
      };
      if (this.statuses.failing(v.status) && prev.status !== v.status) add('crash', v.error ?? undefined);
      else if (v.restarts > prev.restarts) add('restart');
      else if (v.status === 'running' && prev.status !== 'running') add('start');
      else if (v.status === 'stopped' && prev.status !== 'stopped') add('stop');
    }
  }

  upsert(v: AppView): void {
    if (this.refreshing) this.newsDuringRefresh = true;
    if (!this.order.accept(v)) return;
    this.observe(v, Date.now() / 1000);
    const i = this.apps.findIndex((x) => x.name === v.name);
    if (i >= 0) this.apps[i] = v;
    else this.apps = [...this.apps, v];
    this.tick++;
  }

  remove(name: string): void {
    if (this.refreshing) this.newsDuringRefresh = true;
    this.order.forget(name);
    this.apps = this.apps.filter((a) => a.name !== name);
    this.samples.delete(name);
    this.startedAt.delete(name);
    delete this.sampled[name];
    this.marks.delete(name);
  }

  app(name: string): AppView | undefined {
    return this.apps.find((a) => a.name === name);
  }
}

export const store = new Store();
