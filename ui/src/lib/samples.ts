// A small fixed-size ring of recent samples per app, for sparklines and the live chart.

export class SampleRing {
  readonly t: Float64Array;
  readonly cpu: Float64Array;
  readonly mem: Float64Array;
  private start = 0;
  length = 0;
  constructor(readonly capacity: number) {
    this.t = new Float64Array(capacity);
    this.cpu = new Float64Array(capacity);
    this.mem = new Float64Array(capacity);
  }
  push(t: number, cpu: number | null, mem: number | null): void {
    // One sample per second at most: a newer value in the same second replaces the last.
    if (this.length > 0) {
      const last = (this.start + this.length - 1) % this.capacity;
      if (Math.floor(this.t[last]) === Math.floor(t)) {
        this.cpu[last] = cpu ?? NaN;
        this.mem[last] = mem ?? NaN;
        return;
      }
    }
    let i: number;
    if (this.length < this.capacity) {
      i = (this.start + this.length) % this.capacity;
      this.length++;
    } else {
      i = this.start;
      this.start = (this.start + 1) % this.capacity;
    }
    this.t[i] = t;
    this.cpu[i] = cpu ?? NaN;
    this.mem[i] = mem ?? NaN;
  }
  /** The samples in time order, as plain arrays (for uPlot). */
  series(): { t: number[]; cpu: (number | null)[]; mem: (number | null)[] } {
    const t: number[] = [], cpu: (number | null)[] = [], mem: (number | null)[] = [];
    for (let k = 0; k < this.length; k++) {
      const i = (this.start + k) % this.capacity;
      t.push(this.t[i]);
      cpu.push(Number.isNaN(this.cpu[i]) ? null : this.cpu[i]);
      mem.push(Number.isNaN(this.mem[i]) ? null : this.mem[i]);
    }
    return { t, cpu, mem };
  }
}

/** Points of a sparkline path for values in a w×h box (NaN/null leave gaps). */
export function sparkPath(values: ArrayLike<number | null>, w: number, h: number, max?: number): string {
  const n = values.length;
  if (n === 0) return '';
  let hi = max ?? 0;
  if (max === undefined) for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v != null && Number.isFinite(v) && v > hi) hi = v;
  }
  if (hi <= 0) hi = 1;
  const dx = n > 1 ? w / (n - 1) : 0;
  let d = '';
  let pen = false;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v == null || !Number.isFinite(v)) {
      pen = false;
      continue;
    }
    const x = (i * dx).toFixed(1);
    const y = (h - (Math.min(v, hi) / hi) * (h - 1) - 0.5).toFixed(1);
    d += `${pen ? 'L' : 'M'}${x} ${y}`;
    pen = true;
  }
  return d;
}
