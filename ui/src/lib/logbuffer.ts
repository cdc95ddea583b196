// A bounded log buffer for the viewer: a ring of the newest `capacity` lines, a filtered view of
// it (by stream) and the search matches within that view. Lines are addressed by their sequence
// number (0 for the first line ever pushed); the ring forgets the oldest when full.

import { stripAnsi } from './ansi';

export type StreamName = 'out' | 'err' | 'sys';
export interface LogLine {
  ts: string;
  stream: StreamName;
  text: string;
}

const STREAM_CODE: Record<string, number> = { out: 0, err: 1, sys: 2 };
export const STREAM_NAMES: StreamName[] = ['out', 'err', 'sys'];

/** A growable list of ascending integers with cheap removal from the front. */
export class SeqList {
  private a: number[] = [];
  private head = 0;
  get length(): number {
    return this.a.length - this.head;
  }
  at(i: number): number {
    return this.a[this.head + i];
  }
  push(v: number): void {
    this.a.push(v);
  }
  clear(): void {
    this.a = [];
    this.head = 0;
  }
  /** Drop every value below `min`. */
  dropBelow(min: number): number {
    let dropped = 0;
    while (this.head < this.a.length && this.a[this.head] < min) {
      this.head++;
      dropped++;
    }
    if (this.head > 4096 && this.head * 2 > this.a.length) {
      this.a = this.a.slice(this.head);
      this.head = 0;
    }
    return dropped;
  }
  /** The index of the first value >= v (binary search). */
  lowerBound(v: number): number {
    let lo = this.head, hi = this.a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.a[mid] < v) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.head;
  }
}

export class LogBuffer {
  readonly capacity: number;
  private ts: string[];
  private text: string[];
  private plainText: string[];
  private stream: Uint8Array;
  /** Sequence number of the oldest line kept, and how many are kept. */
  first = 0;
  size = 0;
  /** Lines forgotten because the ring was full. */
  evicted = 0;

  private shown = [true, true, true];
  /** The view: seqs of kept lines that pass the stream filter, or null when every line passes. */
  private view: SeqList | null = null;

  private query = '';
  private queryLower = '';
  private caseSensitive = false;
  private regex: RegExp | null = null;
  /** Seqs of view lines that match the search. */
  matches = new SeqList();

  constructor(capacity = 1_000_000) {
    this.capacity = Math.max(1, capacity | 0);
    this.ts = new Array(this.capacity);
    this.text = new Array(this.capacity);
    this.plainText = new Array(this.capacity);
    this.stream = new Uint8Array(this.capacity);
  }

  get next(): number {
    return this.first + this.size;
  }

  private slot(seq: number): number {
    return seq % this.capacity;
  }

  has(seq: number): boolean {
    return seq >= this.first && seq < this.next;
  }

  line(seq: number): LogLine {
    const s = this.slot(seq);
    return { ts: this.ts[s], stream: STREAM_NAMES[this.stream[s]], text: this.text[s] };
  }
  plain(seq: number): string {
    return this.plainText[this.slot(seq)];
  }
  streamOf(seq: number): StreamName {
    return STREAM_NAMES[this.stream[this.slot(seq)]];
  }
  tsOf(seq: number): string {
    return this.ts[this.slot(seq)];
  }
  textOf(seq: number): string {
    return this.text[this.slot(seq)];
  }

  push(lines: LogLine[]): void {
    for (const l of lines) {
      if (this.size === this.capacity) {
        this.first++;
        this.size--;
        this.evicted++;
      }
      const seq = this.first + this.size;
      const s = this.slot(seq);
      const code = STREAM_CODE[l.stream] ?? 0;
      this.ts[s] = l.ts;
      this.text[s] = l.text;
      this.plainText[s] = stripAnsi(l.text);
      this.stream[s] = code;
      this.size++;
      if (this.shown[code]) {
        this.view?.push(seq);
        if (this.query && this.test(this.plainText[s])) this.matches.push(seq);
      }
    }
    this.view?.dropBelow(this.first);
    this.matches.dropBelow(this.first);
  }

  clear(): void {
    this.first = this.next;
    this.size = 0;
    this.view?.clear();
    this.matches.clear();
  }

  // ---- the view --------------------------------------------------------------------------

  /** How many lines the view shows. */
  get rows(): number {
    return this.view ? this.view.length : this.size;
  }

  /** The seq of view row `r`. */
  seqAt(r: number): number {
    return this.view ? this.view.at(r) : this.first + r;
  }

  /** The view row of a seq (or of the first line after it that the view shows). */
  rowOf(seq: number): number {
    if (!this.view) return Math.max(0, Math.min(this.size, seq - this.first));
    return this.view.lowerBound(seq);
  }

  isShown(stream: StreamName): boolean {
    return this.shown[STREAM_CODE[stream]];
  }

  setStreams(show: Partial<Record<StreamName, boolean>>): void {
    for (const k of STREAM_NAMES) if (show[k] !== undefined) this.shown[STREAM_CODE[k]] = !!show[k];
    if (this.shown.every(Boolean)) {
      this.view = null;
    } else {
      const v = new SeqList();
      for (let seq = this.first; seq < this.next; seq++) if (this.shown[this.stream[this.slot(seq)]]) v.push(seq);
      this.view = v;
    }
    this.rebuildMatches();
  }

  // ---- search ----------------------------------------------------------------------------

  /** Set the search; with `regex`, the query is a regular expression. Returns an error message
   *  for an invalid expression (and then searches for nothing). */
  setQuery(query: string, opts: { regex?: boolean; caseSensitive?: boolean } = {}): string | null {
    this.query = query;
    this.caseSensitive = !!opts.caseSensitive;
    this.queryLower = this.caseSensitive ? query : query.toLowerCase();
    this.regex = null;
    let error: string | null = null;
    if (query && opts.regex) {
      try {
        this.regex = new RegExp(query, this.caseSensitive ? 'g' : 'gi');
      } catch (e) {
        error = (e as Error).message;
        this.query = '';
      }
    }
    this.rebuildMatches();
    return error;
  }

  get searching(): boolean {
    return this.query !== '';
  }

  private test(plain: string): boolean {
    if (this.regex) {
      this.regex.lastIndex = 0;
      return this.regex.test(plain);
    }
    return (this.caseSensitive ? plain : plain.toLowerCase()).includes(this.queryLower);
  }

  private rebuildMatches(): void {
    this.matches = new SeqList();
    if (!this.query) return;
    const rows = this.rows;
    for (let r = 0; r < rows; r++) {
      const seq = this.seqAt(r);
      if (this.test(this.plainText[this.slot(seq)])) this.matches.push(seq);
    }
  }

  /** Where the search matches within a line's plain text: [start, end) pairs. */
  ranges(plain: string): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    if (!this.query) return out;
    if (this.regex) {
      this.regex.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = this.regex.exec(plain)) && out.length < 1000) {
        if (m[0].length === 0) {
          this.regex.lastIndex++;
          continue;
        }
        out.push([m.index, m.index + m[0].length]);
      }
      return out;
    }
    const hay = this.caseSensitive ? plain : plain.toLowerCase();
    const n = this.queryLower.length;
    for (let i = hay.indexOf(this.queryLower); i >= 0 && out.length < 1000; i = hay.indexOf(this.queryLower, i + n)) out.push([i, i + n]);
    return out;
  }

  /** The match after (dir 1) or before (dir -1) `seq`, wrapping around; null when none. */
  nextMatch(seq: number | null, dir: 1 | -1): number | null {
    const m = this.matches;
    if (m.length === 0) return null;
    if (seq === null) return dir === 1 ? m.at(0) : m.at(m.length - 1);
    if (dir === 1) {
      const i = m.lowerBound(seq + 1);
      return m.at(i < m.length ? i : 0);
    }
    const i = m.lowerBound(seq) - 1;
    return m.at(i >= 0 ? i : m.length - 1);
  }

  /** The 1-based position of a match among all matches (0 when it is not one). */
  matchIndex(seq: number | null): number {
    if (seq === null) return 0;
    const i = this.matches.lowerBound(seq);
    return i < this.matches.length && this.matches.at(i) === seq ? i + 1 : 0;
  }

  /** The view's lines as text, for copy and download (`ts stream text`, or text alone). */
  exportText(withTimestamps: boolean, fromRow = 0, toRow = this.rows): string {
    const parts: string[] = [];
    for (let r = fromRow; r < toRow; r++) {
      const seq = this.seqAt(r);
      const s = this.slot(seq);
      parts.push(withTimestamps ? `${this.ts[s]} ${STREAM_NAMES[this.stream[s]]} ${this.plainText[s]}` : this.plainText[s]);
    }
    return parts.join('\n') + (parts.length ? '\n' : '');
  }
}

/** Split styled segments further at search ranges, marking the pieces inside a range. */
export function markSegments<T extends { text: string }>(segments: T[], ranges: Array<[number, number]>): Array<T & { mark: boolean }> {
  const out: Array<T & { mark: boolean }> = [];
  let pos = 0;
  let ri = 0;
  for (const seg of segments) {
    let t = seg.text;
    let segStart = pos;
    while (t.length > 0) {
      while (ri < ranges.length && ranges[ri][1] <= segStart) ri++;
      const r = ranges[ri];
      if (!r || r[0] >= segStart + t.length) {
        out.push({ ...seg, text: t, mark: false });
        break;
      }
      if (r[0] > segStart) {
        const cut = r[0] - segStart;
        out.push({ ...seg, text: t.slice(0, cut), mark: false });
        t = t.slice(cut);
        segStart += cut;
        continue;
      }
      const cut = Math.min(t.length, r[1] - segStart);
      out.push({ ...seg, text: t.slice(0, cut), mark: true });
      t = t.slice(cut);
      segStart += cut;
    }
    pos += seg.text.length;
  }
  return out;
}
