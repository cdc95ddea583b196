// The rules of an app's status (may it be started, stopped; is it up; did it fail), as the
// engine serves them from its own definitions (GET /api/v1/statuses): the UI never spells a
// rule itself, so the list, the detail page and the tray always agree.

/** One status and what each rule says of it. */
export interface StatusRule {
  status: string;
  active: boolean;
  can_start: boolean;
  can_stop: boolean;
  failing: boolean;
}

export class StatusRules {
  private readonly rules = new Map<string, StatusRule>();
  private readonly ranks = new Map<string, number>();

  constructor(table: StatusRule[] = []) {
    for (const r of table) {
      this.ranks.set(r.status, this.ranks.size);
      this.rules.set(r.status, r);
    }
  }

  /** Every status the engine has, in the engine's order. */
  names(): string[] {
    return [...this.rules.keys()];
  }

  /** A status's place in the engine's order (for sorting); one the table lacks comes last. */
  rank(status: string): number {
    return this.ranks.get(status) ?? this.rules.size;
  }

  /** Start makes sense. A status the table lacks (or no table yet) allows nothing. */
  canStart(status: string): boolean {
    return this.rules.get(status)?.can_start ?? false;
  }

  /** Stop makes sense. */
  canStop(status: string): boolean {
    return this.rules.get(status)?.can_stop ?? false;
  }

  /** Not down yet: up, on its way up or down, or a restart pending. */
  active(status: string): boolean {
    return this.rules.get(status)?.active ?? false;
  }

  /** It crashed and waits for a restart, or Hangar gave up on it. */
  failing(status: string): boolean {
    return this.rules.get(status)?.failing ?? false;
  }
}
