// ANSI escape sequences in log text: SGR colours and styles become segments; every other
// control sequence (cursor moves, erase, OSC titles and links) is dropped.

export interface Style {
  /** 0–255 palette index, or a `#rrggbb` colour, or null for the default. */
  fg: number | string | null;
  bg: number | string | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  inverse: boolean;
}

export interface Segment {
  text: string;
  style: Style | null; // null: plain
}

const plain = (): Style => ({ fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false });

const isPlain = (s: Style) =>
  s.fg === null && s.bg === null && !s.bold && !s.dim && !s.italic && !s.underline && !s.inverse;

const hex2 = (n: number) => Math.max(0, Math.min(255, n | 0)).toString(16).padStart(2, '0');

/** Apply one SGR parameter list to a style (in place). */
export function applySgr(style: Style, params: number[]): void {
  if (params.length === 0) params = [0];
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (p === 0) Object.assign(style, plain());
    else if (p === 1) style.bold = true;
    else if (p === 2) style.dim = true;
    else if (p === 3) style.italic = true;
    else if (p === 4) style.underline = true;
    else if (p === 7) style.inverse = true;
    else if (p === 22) style.bold = style.dim = false;
    else if (p === 23) style.italic = false;
    else if (p === 24) style.underline = false;
    else if (p === 27) style.inverse = false;
    else if (p >= 30 && p <= 37) style.fg = p - 30;
    else if (p >= 90 && p <= 97) style.fg = p - 90 + 8;
    else if (p === 39) style.fg = null;
    else if (p >= 40 && p <= 47) style.bg = p - 40;
    else if (p >= 100 && p <= 107) style.bg = p - 100 + 8;
    else if (p === 49) style.bg = null;
    else if (p === 38 || p === 48) {
      const mode = params[i + 1];
      let colour: number | string | null = null;
      if (mode === 5 && i + 2 < params.length) {
        colour = Math.max(0, Math.min(255, params[i + 2]));
        i += 2;
      } else if (mode === 2 && i + 4 < params.length) {
        colour = `#${hex2(params[i + 2])}${hex2(params[i + 3])}${hex2(params[i + 4])}`;
        i += 4;
      } else {
        i = params.length; // malformed: ignore the rest
      }
      if (colour !== null) {
        if (p === 38) style.fg = colour;
        else style.bg = colour;
      }
    }
    // anything else (blink, fonts, …) is ignored
  }
}

/** Split a line into styled segments. Plain lines give one segment with style null. */
export function parseAnsi(line: string): Segment[] {
  if (line.indexOf('\x1b') < 0 && line.indexOf('\x9b') < 0) return [{ text: line, style: null }];
  const out: Segment[] = [];
  const style = plain();
  let text = '';
  const flush = () => {
    if (text) out.push({ text, style: isPlain(style) ? null : { ...style } });
    text = '';
  };
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line.charCodeAt(i);
    const csi = c === 0x9b || (c === 0x1b && line[i + 1] === '[');
    if (csi) {
      let j = i + (c === 0x9b ? 1 : 2);
      const start = j;
      while (j < n) {
        const k = line.charCodeAt(j);
        if (k >= 0x40 && k <= 0x7e) break; // final byte
        j++;
      }
      if (j >= n) {
        i = n; // unterminated: drop it
        break;
      }
      if (line[j] === 'm') {
        flush();
        const body = line.slice(start, j);
        const params = body === '' ? [] : body.split(/[;:]/).map((x) => (x === '' ? 0 : parseInt(x, 10) || 0));
        applySgr(style, params);
      }
      i = j + 1;
    } else if (c === 0x1b && line[i + 1] === ']') {
      // OSC: up to BEL or ST (ESC \)
      let j = i + 2;
      while (j < n && line.charCodeAt(j) !== 0x07 && !(line.charCodeAt(j) === 0x1b && line[j + 1] === '\\')) j++;
      i = j >= n ? n : line.charCodeAt(j) === 0x07 ? j + 1 : j + 2;
    } else if (c === 0x1b) {
      i += 2; // a two-byte escape (ESC x)
    } else {
      text += line[i];
      i++;
    }
  }
  flush();
  return out;
}

/** The text without any escape sequence (for search, copy and download). */
export function stripAnsi(line: string): string {
  if (line.indexOf('\x1b') < 0 && line.indexOf('\x9b') < 0) return line;
  return parseAnsi(line)
    .map((s) => s.text)
    .join('');
}

// xterm's 256-colour cube and grey ramp, for palette indexes 16–255.
export function paletteColour(i: number): string {
  if (i < 16) return `var(--ansi-${i})`;
  if (i < 232) {
    const v = i - 16;
    const steps = [0, 95, 135, 175, 215, 255];
    return `#${hex2(steps[Math.floor(v / 36)])}${hex2(steps[Math.floor(v / 6) % 6])}${hex2(steps[v % 6])}`;
  }
  const g = 8 + (i - 232) * 10;
  return `#${hex2(g)}${hex2(g)}${hex2(g)}`;
}

const colour = (c: number | string) => (typeof c === 'number' ? paletteColour(c) : c);

/** The inline CSS for a style ('' for plain). */
export function styleCss(s: Style | null): string {
  if (!s) return '';
  let fg = s.fg, bg = s.bg;
  if (s.bold && typeof fg === 'number' && fg < 8) fg += 8; // bright on bold, as terminals do
  const parts: string[] = [];
  if (s.inverse) {
    parts.push(`color:${bg === null ? 'var(--log-bg)' : colour(bg)}`);
    parts.push(`background:${fg === null ? 'var(--log-fg)' : colour(fg)}`);
  } else {
    if (fg !== null) parts.push(`color:${colour(fg)}`);
    if (bg !== null) parts.push(`background:${colour(bg)}`);
  }
  if (s.bold) parts.push('font-weight:bold');
  if (s.dim) parts.push('opacity:.7');
  if (s.italic) parts.push('font-style:italic');
  if (s.underline) parts.push('text-decoration:underline');
  return parts.join(';');
}
