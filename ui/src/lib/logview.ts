// The log viewer's list, drawn by hand for speed: only the rows in sight exist in the DOM, a
// frame renders them from the buffer in one innerHTML write, and new lines arrive in batches.
// A sticky window inside a tall scroller shows the rows; the scroller's height stands for every
// row (capped, see virtual.ts), so the scrollbar and keyboard scrolling work natively.

import { parseAnsi, styleCss } from './ansi';
import { clock } from './format';
import { type LogBuffer, markSegments } from './logbuffer';
import { atEnd, rowAt, rowsToRender, scrollHeight, scrollTopFor, revealRow } from './virtual';

export interface LogViewOptions {
  timestamps: boolean;
  wrap: boolean;
  follow: boolean;
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text made safe in an element or a quoted attribute (as the engine's own `web::escape`). */
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESC[c]);

/** One row of the list as HTML: its time (when shown), its text with ANSI styles, the search
 *  matches (`ranges`, in the plain text) marked. Every field is escaped, the time included: a
 *  time that does not parse is shown as it came. */
export function rowMarkup(
  seq: number,
  stream: string,
  ts: string,
  text: string,
  ranges: [number, number][],
  timestamps: boolean,
): string {
  const segs = parseAnsi(text);
  let body = '';
  if (ranges.length) {
    for (const s of markSegments(segs, ranges)) {
      const css = styleCss(s.style);
      const inner = escapeHtml(s.text);
      const styled = css ? `<span style="${css}">${inner}</span>` : inner;
      body += s.mark ? `<mark>${styled}</mark>` : styled;
    }
  } else {
    for (const s of segs) {
      const css = styleCss(s.style);
      body += css ? `<span style="${css}">${escapeHtml(s.text)}</span>` : escapeHtml(s.text);
    }
  }
  const time = timestamps ? `<span class="lv-ts" title="${escapeHtml(ts)}">${escapeHtml(clock(ts))}</span>` : '';
  return `<div class="lv-row lv-${escapeHtml(stream)}${ranges.length ? ' lv-hit' : ''}" data-seq="${seq}">${time}<span class="lv-text">${body || ' '}</span></div>`;
}

export class LogView {
  readonly scroller: HTMLDivElement;
  private win: HTMLDivElement;
  private rowsEl: HTMLDivElement;
  private spacer: HTMLDivElement;
  rowHeight = 18;
  private viewport = 0;
  opts: LogViewOptions;
  /** The search match drawn as current. */
  current: number | null = null;
  private frame = 0;
  private lastKey = '';
  private cache = new Map<number, string>();
  private cacheKey = '';
  private expectTop = -1;
  private anchorSeq: number | null = null;
  private seen = '';
  private ro: ResizeObserver | null = null;
  /** Told when following starts or stops because of the user's scrolling. */
  onFollowChange: (follow: boolean) => void = () => {};
  /** Frames drawn (for the benchmark). */
  frames = 0;

  constructor(
    host: HTMLElement,
    readonly buf: LogBuffer,
    opts: Partial<LogViewOptions> = {},
  ) {
    this.opts = { timestamps: true, wrap: false, follow: true, ...opts };
    this.scroller = document.createElement('div');
    this.scroller.className = 'lv-scroller';
    this.win = document.createElement('div');
    this.win.className = 'lv-window';
    // One tab stop, on the window: it scrolls sideways over long lines, so it is what the
    // keyboard must reach (axe's scrollable-region-focusable); the keys that scroll up and down
    // move the scroller behind it (onKey).
    this.win.tabIndex = 0;
    this.win.setAttribute('role', 'log');
    this.win.setAttribute('aria-live', 'off');
    this.win.setAttribute('aria-label', 'Log lines');
    this.win.addEventListener('keydown', this.onKey);
    this.rowsEl = document.createElement('div');
    this.rowsEl.className = 'lv-rows';
    this.spacer = document.createElement('div');
    this.spacer.className = 'lv-spacer';
    this.win.appendChild(this.rowsEl);
    this.scroller.append(this.win, this.spacer);
    host.appendChild(this.scroller);
    this.measure();
    this.scroller.addEventListener('scroll', this.onScroll, { passive: true });
    if (typeof ResizeObserver !== 'undefined') {
      this.ro = new ResizeObserver(() => {
        this.measure();
        this.schedule();
      });
      this.ro.observe(this.scroller);
    }
    this.schedule();
  }

  destroy(): void {
    this.ro?.disconnect();
    this.win.removeEventListener('keydown', this.onKey);
    this.scroller.removeEventListener('scroll', this.onScroll);
    cancelAnimationFrame(this.frame);
    this.scroller.remove();
  }

  /** Up and down from the keyboard, as the scroller itself would scroll with the focus on it. */
  private onKey = (e: KeyboardEvent) => {
    if (e.altKey || e.metaKey || e.ctrlKey) return; // Ctrl+End and the like are the page's
    const s = this.scroller;
    const page = Math.max(this.rowHeight, this.viewport - this.rowHeight);
    let to: number;
    switch (e.key) {
      case 'ArrowDown':
        to = s.scrollTop + 2 * this.rowHeight;
        break;
      case 'ArrowUp':
        to = s.scrollTop - 2 * this.rowHeight;
        break;
      case 'PageDown':
        to = s.scrollTop + page;
        break;
      case 'PageUp':
        to = s.scrollTop - page;
        break;
      case ' ':
        to = s.scrollTop + (e.shiftKey ? -page : page);
        break;
      case 'Home':
        to = 0;
        break;
      case 'End':
        to = s.scrollHeight;
        break;
      default:
        return;
    }
    e.preventDefault();
    s.scrollTop = to;
  };

  private measure() {
    const probe = document.createElement('div');
    probe.className = 'lv-row';
    probe.textContent = 'M';
    this.rowsEl.appendChild(probe);
    const h = probe.getBoundingClientRect().height;
    probe.remove();
    if (h > 0) this.rowHeight = h;
    this.viewport = this.scroller.clientHeight;
    this.win.style.height = `${this.viewport}px`;
  }

  set(opts: Partial<LogViewOptions>): void {
    Object.assign(this.opts, opts);
    this.scroller.classList.toggle('lv-wrap', this.opts.wrap);
    this.cache.clear();
    this.lastKey = '';
    this.schedule();
  }

  /** The buffer or the search changed: draw again on the next frame. */
  invalidate(contentChanged = false): void {
    if (contentChanged) {
      this.cache.clear();
      this.lastKey = '';
    }
    this.schedule();
  }

  schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private onScroll = () => {
    const top = this.scroller.scrollTop;
    if (this.expectTop >= 0 && Math.abs(top - this.expectTop) <= 1) {
      this.expectTop = -1;
    } else {
      this.expectTop = -1;
      const rows = this.buf.rows;
      const end = atEnd(top, rows, this.rowHeight, this.viewport);
      if (end !== this.opts.follow) {
        this.opts.follow = end;
        this.onFollowChange(end);
      }
      if (!end && rows > 0) this.anchorSeq = this.buf.seqAt(rowAt(top, rows, this.rowHeight, this.viewport).first);
    }
    this.schedule();
  };

  private setTop(top: number) {
    if (Math.abs(this.scroller.scrollTop - top) > 0.5) {
      this.expectTop = top;
      this.scroller.scrollTop = top;
    }
  }

  /** Scroll so the row of `seq` is in sight (search next/previous). */
  reveal(seq: number): void {
    const row = this.buf.rowOf(seq);
    const top = revealRow(row, this.scroller.scrollTop, this.buf.rows, this.rowHeight, this.viewport);
    if (top !== null) {
      if (this.opts.follow) {
        this.opts.follow = false;
        this.onFollowChange(false);
      }
      this.setTop(top);
      this.anchorSeq = this.buf.seqAt(rowAt(top, this.buf.rows, this.rowHeight, this.viewport).first);
    }
    this.schedule();
  }

  scrollToEnd(): void {
    this.opts.follow = true;
    this.schedule();
  }

  private rowHtml(seq: number): string {
    const cached = this.cache.get(seq);
    if (cached !== undefined) return cached;
    const b = this.buf;
    const ranges = b.searching ? b.ranges(b.plain(seq)) : [];
    const html = rowMarkup(seq, b.streamOf(seq), b.tsOf(seq), b.textOf(seq), ranges, this.opts.timestamps);
    if (this.cache.size > 2000) this.cache.clear();
    this.cache.set(seq, html);
    return html;
  }

  render(): void {
    const b = this.buf;
    const rows = b.rows;
    const rh = this.rowHeight;
    if (this.viewport === 0) this.measure();
    const vp = this.viewport;
    const sh = scrollHeight(rows, rh);
    const spacerH = Math.max(0, sh - vp);
    if (this.spacer.style.height !== `${spacerH}px`) this.spacer.style.height = `${spacerH}px`;
    const count = rowsToRender(vp, rh, 2);
    let first: number;
    let offset = 0;
    let bottom = false;
    if (this.opts.follow) {
      this.setTop(Math.max(0, sh - vp));
      first = Math.max(0, rows - count);
      bottom = rows * rh > vp; // a short log starts at the top
    } else {
      const shape = `${rows}:${b.first}`;
      if (this.anchorSeq !== null && rows > 0 && shape !== this.seen) {
        // Keep the line at the top where it is while lines arrive or old ones are forgotten.
        const want = scrollTopFor(b.rowOf(this.anchorSeq), rows, rh, vp);
        this.setTop(want);
      }
      const at = rowAt(this.scroller.scrollTop, rows, rh, vp);
      first = at.first;
      offset = this.opts.wrap ? 0 : at.offset;
    }
    this.seen = `${rows}:${b.first}`;
    const last = Math.min(rows, first + count);
    const key = `${first}:${last}:${first < rows ? b.seqAt(first) : -1}:${bottom}:${this.current}:${offset.toFixed(1)}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    let html = '';
    for (let r = first; r < last; r++) {
      const seq = b.seqAt(r);
      const row = this.rowHtml(seq);
      html += seq === this.current ? row.replace('class="lv-row', 'class="lv-row lv-current') : row;
    }
    this.rowsEl.innerHTML = html;
    this.rowsEl.classList.toggle('lv-bottom', bottom);
    this.rowsEl.style.transform = offset ? `translateY(${-offset}px)` : '';
    this.frames++;
  }
}
