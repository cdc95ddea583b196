// Views of an app can arrive out of order: the create form's answer, a list read while an event
// was on its way, and the event stream itself. Each view carries the engine's `version` of that
// app's state (higher is newer, within one engine); a view older than one already applied is
// dropped, so a late answer never turns "running" back into "starting".

export class ViewOrder {
  private seen = new Map<string, number>();

  /** A new connection to the engine (perhaps a new engine, whose versions start again). */
  reset(): void {
    this.seen.clear();
  }

  /** Whether `v` is at least as new as every view of its app applied so far; if so, it counts. */
  accept(v: { name: string; version?: number }): boolean {
    const version = v.version ?? 0;
    const last = this.seen.get(v.name);
    if (last !== undefined && version < last) return false;
    this.seen.set(v.name, version);
    return true;
  }

  /** The app is gone: a view of it made later starts afresh. */
  forget(name: string): void {
    this.seen.delete(name);
  }
}
