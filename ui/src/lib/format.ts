// Display formatting shared by every page.

export function bytes(b: number | null | undefined): string {
  if (b == null || !Number.isFinite(b)) return '–';
  if (b < 1024) return `${b} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = b / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** A size as the engine reads it back, in the largest unit that holds it exactly (`600M`,
 * `1536K`): what a form field shows for a stored limit. */
export function sizeText(b: number): string {
  for (const [unit, n] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) {
    if (b !== 0 && b % n === 0) return `${b / n}${unit}`;
  }
  return String(b);
}

export function percent(p: number | null | undefined): string {
  if (p == null || !Number.isFinite(p)) return '–';
  return `${p >= 100 ? p.toFixed(0) : p.toFixed(1)}%`;
}

export function duration(s: number | null | undefined): string {
  if (s == null || !Number.isFinite(s) || s < 0) return '–';
  s = Math.floor(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** `HH:MM:SS.mmm` in local time, from an RFC 3339 stamp; the input when it does not parse. */
export function clock(ts: string): string {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return ts;
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export const STATUS_LABEL: Record<string, string> = {
  stopped: 'Stopped',
  starting: 'Starting',
  running: 'Running',
  stopping: 'Stopping',
  upgrading: 'Upgrading',
  backoff: 'Crashed, retrying',
  error: 'Error',
};

export function statusLabel(s: string): string {
  return STATUS_LABEL[s] ?? s;
}
