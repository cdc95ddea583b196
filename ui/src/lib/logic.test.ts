import { describe, expect, it } from 'vitest';
import { checkName, generateName, NAME_RULE } from './name';
import { parseAnsi, stripAnsi, styleCss, paletteColour } from './ansi';
import { LogBuffer, markSegments, type LogLine } from './logbuffer';
import { bytes, percent, duration, clock, statusLabel, sizeText } from './format';
import { MAX_SCROLL_PX, rowAt, scrollHeight, scrollTopFor, atEnd, revealRow, rowsToRender, maxScrollTop } from './virtual';
import { SseParser } from './sse';
import { SampleRing, sparkPath } from './samples';
import { toHistory } from './api';
import { parseRoute, href } from './router.svelte';
import { ViewOrder } from './order';
import { StatusRules, type StatusRule } from './statuses';
import served from './statuses.fixture.json';
import { store } from './store.svelte';
import { canStart, canStop } from '../pages/actions';
import { rowMarkup } from './logview';

describe('name rule (same as src/validate.rs)', () => {
  it('accepts valid names', () => {
    for (const n of ['a', 'a_1', 'shop-2', 'x'.repeat(40), 'main2', 'a_b-c9']) expect(checkName(n), n).toBeNull();
  });
  it('refuses with the reason and the rule', () => {
    expect(checkName('')).toBe(`the name is empty; ${NAME_RULE}`);
    expect(checkName('Shop')).toBe(`"Shop" does not start with a lowercase letter; ${NAME_RULE}`);
    expect(checkName('1a')).toContain('does not start with a lowercase letter');
    expect(checkName('_a')).toContain('does not start');
    expect(checkName('a'.repeat(41))).toBe(`"${'a'.repeat(41)}" is 41 characters long; ${NAME_RULE}`);
    expect(checkName('a.b')).toBe(`"a.b" contains '.'; ${NAME_RULE}`);
    expect(checkName('aB')).toContain(`contains 'B'`);
    expect(checkName('a b')).toContain(`contains ' '`);
    expect(checkName('aé')).toContain(`contains 'é'`);
    expect(checkName('main')).toBe('"main" is reserved for the main app; choose another name');
  });
  it('generates valid a_ names', () => {
    for (let i = 0; i < 200; i++) {
      const n = generateName();
      expect(n).toMatch(/^a_[a-z0-9]{6}$/);
      expect(checkName(n)).toBeNull();
    }
    expect(generateName(() => 0)).toBe('a_aaaaaa');
    expect(generateName(() => 0.9999999)).toBe('a_999999');
  });
});

describe('ANSI', () => {
  it('leaves plain text alone', () => {
    expect(parseAnsi('hello')).toEqual([{ text: 'hello', style: null }]);
  });
  it('parses colours and resets', () => {
    const s = parseAnsi('a\x1b[31mred\x1b[0m b');
    expect(s.map((x) => x.text)).toEqual(['a', 'red', ' b']);
    expect(s[1].style?.fg).toBe(1);
    expect(s[2].style).toBeNull();
  });
  it('handles bold, bright, 256 and true colour, backgrounds', () => {
    const s = parseAnsi('\x1b[1;92mX\x1b[38;5;196mY\x1b[48;2;1;2;3mZ\x1b[39;49;22mW');
    expect(s[0].style).toMatchObject({ bold: true, fg: 10 });
    expect(s[1].style).toMatchObject({ fg: 196 });
    expect(s[2].style).toMatchObject({ fg: 196, bg: '#010203' });
    expect(s[3].style).toBeNull();
    expect(styleCss(s[2].style)).toContain('background:#010203');
  });
  it('drops other control sequences and OSC', () => {
    expect(stripAnsi('\x1b[2K\x1b[1Gdone \x1b]0;title\x07ok \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\')).toBe('done ok link');
    expect(stripAnsi('cut \x1b[31')).toBe('cut ');
    expect(stripAnsi('\x1b[mplain')).toBe('plain');
  });
  it('maps the palette', () => {
    expect(paletteColour(1)).toBe('var(--ansi-1)');
    expect(paletteColour(16)).toBe('#000000');
    expect(paletteColour(231)).toBe('#ffffff');
    expect(paletteColour(232)).toBe('#080808');
  });
  it('bold makes dark colours bright, inverse swaps', () => {
    expect(styleCss(parseAnsi('\x1b[1;31mx')[0].style)).toContain('var(--ansi-9)');
    expect(styleCss(parseAnsi('\x1b[7mx')[0].style)).toContain('background:var(--log-fg)');
  });
});

const line = (text: string, stream: LogLine['stream'] = 'out'): LogLine => ({ ts: '2026-01-01T00:00:00.000Z', stream, text });

describe('log buffer', () => {
  it('keeps the newest lines within its capacity', () => {
    const b = new LogBuffer(3);
    b.push(['1', '2', '3', '4', '5'].map((t) => line(t)));
    expect(b.size).toBe(3);
    expect(b.first).toBe(2);
    expect(b.evicted).toBe(2);
    expect([0, 1, 2].map((r) => b.textOf(b.seqAt(r)))).toEqual(['3', '4', '5']);
  });
  it('filters by stream, also for lines that arrive later', () => {
    const b = new LogBuffer(10);
    b.push([line('o1'), line('e1', 'err'), line('s1', 'sys')]);
    b.setStreams({ out: false });
    expect(b.rows).toBe(2);
    b.push([line('o2'), line('e2', 'err')]);
    expect(b.rows).toBe(3);
    expect(b.textOf(b.seqAt(2))).toBe('e2');
    b.setStreams({ out: true });
    expect(b.rows).toBe(5);
  });
  it('drops filtered rows when the ring forgets them', () => {
    const b = new LogBuffer(4);
    b.setStreams({ sys: false });
    b.push(['a', 'b', 'c', 'd', 'e', 'f'].map((t) => line(t)));
    expect(b.rows).toBe(4);
    expect(b.textOf(b.seqAt(0))).toBe('c');
  });
  it('searches, case-insensitive by default, and steps through matches with wrap-around', () => {
    const b = new LogBuffer(100);
    b.push([line('GET /a'), line('post /b'), line('get /c'), line('x')]);
    b.setQuery('get');
    expect(b.matches.length).toBe(2);
    const m1 = b.nextMatch(null, 1)!;
    expect(b.textOf(m1)).toBe('GET /a');
    const m2 = b.nextMatch(m1, 1)!;
    expect(b.textOf(m2)).toBe('get /c');
    expect(b.nextMatch(m2, 1)).toBe(m1);
    expect(b.nextMatch(m1, -1)).toBe(m2);
    expect(b.matchIndex(m2)).toBe(2);
    b.push([line('get more')]);
    expect(b.matches.length).toBe(3);
    b.setQuery('get', { caseSensitive: true });
    expect(b.matches.length).toBe(2);
  });
  it('searches with regular expressions and reports a bad one', () => {
    const b = new LogBuffer(10);
    b.push([line('id=12'), line('id=x')]);
    expect(b.setQuery('id=\\d+', { regex: true })).toBeNull();
    expect(b.matches.length).toBe(1);
    expect(b.ranges('id=12 id=3')).toEqual([[0, 5], [6, 10]]);
    expect(b.setQuery('(', { regex: true })).toBeTruthy();
    expect(b.matches.length).toBe(0);
  });
  it('searches the text without escape sequences', () => {
    const b = new LogBuffer(10);
    b.push([line('\x1b[31mer\x1b[0mror here')]);
    b.setQuery('error');
    expect(b.matches.length).toBe(1);
  });
  it('only searches the lines the filter shows', () => {
    const b = new LogBuffer(10);
    b.push([line('boom', 'err'), line('boom')]);
    b.setStreams({ err: false });
    b.setQuery('boom');
    expect(b.matches.length).toBe(1);
  });
  it('exports the view as text', () => {
    const b = new LogBuffer(10);
    b.push([line('\x1b[1ma'), line('b', 'err')]);
    expect(b.exportText(false)).toBe('a\nb\n');
    expect(b.exportText(true)).toBe('2026-01-01T00:00:00.000Z out a\n2026-01-01T00:00:00.000Z err b\n');
  });
  it('holds a million lines', () => {
    const b = new LogBuffer(1_000_000);
    const batch: LogLine[] = [];
    for (let i = 0; i < 1_100_000; i++) batch.push(line(`line ${i}`));
    b.push(batch);
    expect(b.rows).toBe(1_000_000);
    expect(b.textOf(b.seqAt(0))).toBe('line 100000');
    b.setQuery('line 1099999');
    expect(b.matches.length).toBe(1);
  });
  it('marks search ranges across styled segments', () => {
    const segs = [{ text: 'abc' }, { text: 'def' }];
    const out = markSegments(segs, [[2, 4]]);
    expect(out.map((s) => [s.text, s.mark])).toEqual([['ab', false], ['c', true], ['d', true], ['ef', false]]);
    expect(markSegments([{ text: 'xx' }], []).map((s) => s.mark)).toEqual([false]);
    expect(markSegments([{ text: 'aXaXa' }], [[1, 2], [3, 4]]).map((s) => s.text)).toEqual(['a', 'X', 'a', 'X', 'a']);
  });
});

describe('formatting', () => {
  it('sizeText reads back as the engine reads a size (src/base/validate.rs size_text)', () => {
    expect(sizeText(600 * 2 ** 20)).toBe('600M');
    expect(sizeText(2 ** 31)).toBe('2G');
    expect(sizeText(1536 * 1024)).toBe('1536K');
    expect(sizeText(2 ** 40)).toBe('1T');
    expect(sizeText(1000)).toBe('1000');
    expect(sizeText(0)).toBe('0');
  });
  it('bytes', () => {
    expect(bytes(null)).toBe('–');
    expect(bytes(512)).toBe('512 B');
    expect(bytes(1536)).toBe('1.5 KiB');
    expect(bytes(30 * 1024 * 1024)).toBe('30.0 MiB');
    expect(bytes(300 * 1024 * 1024)).toBe('300 MiB');
    expect(bytes(2 * 1024 ** 3)).toBe('2.0 GiB');
  });
  it('percent and duration', () => {
    expect(percent(undefined)).toBe('–');
    expect(percent(3.14159)).toBe('3.1%');
    expect(percent(150)).toBe('150%');
    expect(duration(59)).toBe('59s');
    expect(duration(61)).toBe('1m 1s');
    expect(duration(3 * 3600 + 120)).toBe('3h 2m');
    expect(duration(90000)).toBe('1d 1h');
    expect(duration(null)).toBe('–');
  });
  it('clock and status labels', () => {
    expect(clock('nonsense')).toBe('nonsense');
    expect(clock('2026-01-01T10:02:03.004Z')).toMatch(/^\d\d:02:03\.004$/);
    expect(statusLabel('backoff')).toBe('Crashed, retrying');
  });
});

describe('virtual list maths', () => {
  it('maps scroll positions to rows exactly below the cap', () => {
    expect(scrollHeight(100, 20)).toBe(2000);
    expect(rowAt(0, 100, 20, 200)).toEqual({ first: 0, offset: 0 });
    expect(rowAt(45, 100, 20, 200)).toEqual({ first: 2, offset: 5 });
    expect(scrollTopFor(10, 100, 20, 200)).toBe(200);
    expect(scrollTopFor(99, 100, 20, 200)).toBe(1800); // clamped to the end
    expect(rowAt(0, 0, 20, 200)).toEqual({ first: 0, offset: 0 });
  });
  it('caps the scroll height and maps proportionally above it', () => {
    const rows = 1_000_000, rh = 18, vp = 900;
    expect(scrollHeight(rows, rh)).toBe(MAX_SCROLL_PX);
    const end = maxScrollTop(rows, rh, vp);
    const last = rowAt(end, rows, rh, vp);
    expect(last.first + vp / rh).toBeCloseTo(rows, 0); // the end shows the last row
    expect(rowAt(0, rows, rh, vp).first).toBe(0);
    for (const row of [0, 1, 12345, 500000, 999000]) {
      const top = scrollTopFor(row, rows, rh, vp);
      expect(Math.abs(rowAt(top, rows, rh, vp).first - row)).toBeLessThanOrEqual(1);
    }
  });
  it('knows the end, the rows to draw, and how to reveal a row', () => {
    expect(atEnd(1800, 100, 20, 200)).toBe(true);
    expect(atEnd(1700, 100, 20, 200)).toBe(false);
    expect(rowsToRender(200, 20)).toBe(12);
    expect(revealRow(3, 0, 100, 20, 200)).toBeNull();
    expect(revealRow(50, 0, 100, 20, 200)).toBe(900);
  });
});

describe('server-sent events parser', () => {
  it('parses events split across chunks, CRLF, comments and multi-line data', () => {
    const p = new SseParser();
    expect(p.push('event: app\ndata: {"a"')).toEqual([]);
    expect(p.push(':1}\n\n: keep-alive\n\n')).toEqual([{ event: 'app', data: '{"a":1}' }]);
    expect(p.push('data: x\r\ndata: y\r')).toEqual([]);
    expect(p.push('\n\r\n')).toEqual([{ event: 'message', data: 'x\ny' }]);
    expect(p.push('event:line\ndata:z\n\n')).toEqual([{ event: 'line', data: 'z' }]);
  });
});

describe('samples', () => {
  it('is a bounded ring with one sample per second', () => {
    const r = new SampleRing(3);
    r.push(1, 1, 10);
    r.push(1.5, 2, 20);
    expect(r.length).toBe(1);
    r.push(2, 3, null);
    r.push(3, 4, 40);
    r.push(4, 5, 50);
    expect(r.series()).toEqual({ t: [2, 3, 4], cpu: [3, 4, 5], mem: [null, 40, 50] });
  });
  it('draws sparkline paths with gaps', () => {
    expect(sparkPath([], 10, 10)).toBe('');
    expect(sparkPath([0, 10], 10, 10)).toBe('M0.0 9.5L10.0 0.5');
    expect(sparkPath([1, null, 1], 10, 10).match(/M/g)?.length).toBe(2);
  });
});

describe('API shapes', () => {
  it('reads the engine\'s metrics history in seconds, oldest first', () => {
    const point = (t: number, cpu: number, mem: number) => ({ t, cpu, cpu_min: cpu, cpu_max: cpu, mem, mem_min: mem, mem_max: mem });
    const h = toHistory({
      name: 'a',
      range_seconds: 300,
      resolution: '1s',
      points: [point(1767225601000, 5, 100), point(1767225600500, 1, 50)],
      events: [
        { t: 1767225600000, kind: 'crash', detail: 'exit 1' },
        { t: 1767225601000, kind: 'start', detail: null },
      ],
      current: null,
    });
    expect(h.points).toEqual([{ t: 1767225600.5, cpu: 1, mem: 50 }, { t: 1767225601, cpu: 5, mem: 100 }]);
    expect(h.marks).toEqual([{ t: 1767225600, kind: 'crash', detail: 'exit 1' }, { t: 1767225601, kind: 'start', detail: undefined }]);
  });
});

describe('routes', () => {
  it('parses and builds hash routes', () => {
    expect(parseRoute('')).toEqual({ page: 'apps' });
    expect(parseRoute('#/new')).toEqual({ page: 'new' });
    expect(parseRoute('#/apps/a_1')).toEqual({ page: 'detail', name: 'a_1' });
    expect(parseRoute('#/apps/a_1/edit')).toEqual({ page: 'edit', name: 'a_1' });
    expect(parseRoute('#/logs/a_1?bare')).toEqual({ page: 'logs', name: 'a_1' });
    expect(parseRoute('#/zzz').page).toBe('notfound');
    expect(href({ page: 'logs', name: 'a b' })).toBe('#/logs/a%20b');
  });
});

describe('view order', () => {
  it('drops a view older than one applied, per app', () => {
    const o = new ViewOrder();
    expect(o.accept({ name: 'a', version: 5 })).toBe(true); // the event: running
    expect(o.accept({ name: 'a', version: 3 })).toBe(false); // the create answer, late: starting
    expect(o.accept({ name: 'a', version: 5 })).toBe(true); // same state (an edit of its record)
    expect(o.accept({ name: 'b', version: 1 })).toBe(true);
    expect(o.accept({ name: 'a', version: 6 })).toBe(true);
  });
  it('starts afresh on a new connection and for a re-created app', () => {
    const o = new ViewOrder();
    o.accept({ name: 'a', version: 900 });
    o.reset(); // a restarted engine counts from 1 again
    expect(o.accept({ name: 'a', version: 1 })).toBe(true);
    o.forget('a');
    expect(o.accept({ name: 'a', version: 0 })).toBe(true);
    expect(o.accept({ name: 'c' })).toBe(true); // an engine without versions: every view counts
    expect(o.accept({ name: 'c' })).toBe(true);
  });
});

// The fixture is what GET /api/v1/statuses answers: tests/it/lifecycle.rs checks the engine serves
// exactly it, so these are the engine's own rules.
describe('status rules', () => {
  const table = served.statuses as StatusRule[];
  const rules = new StatusRules(table);
  const where = (rule: (s: string) => boolean) => table.map((r) => r.status).filter(rule);
  it('reads the engine table', () => {
    expect(where((s) => rules.canStart(s))).toEqual(['stopped', 'backoff', 'error']);
    expect(where((s) => rules.canStop(s))).toEqual(['starting', 'running', 'upgrading', 'backoff']);
    expect(where((s) => rules.active(s))).toEqual(['starting', 'running', 'stopping', 'upgrading', 'backoff']);
    expect(where((s) => rules.failing(s))).toEqual(['backoff', 'error']);
  });
  it('allows nothing for an unknown status, or before the table came', () => {
    expect(rules.canStart('exploded')).toBe(false);
    expect(new StatusRules().canStop('running')).toBe(false);
  });
  it('is what the actions of the list and the detail page ask', () => {
    const before = store.statuses;
    expect(canStart('stopped')).toBe(false); // no table yet: no buttons
    store.statuses = rules;
    try {
      expect(table.map((r) => canStart(r.status))).toEqual(table.map((r) => r.can_start));
      expect(table.map((r) => canStop(r.status))).toEqual(table.map((r) => r.can_stop));
    } finally {
      store.statuses = before;
    }
  });
});

describe('log rows as HTML', () => {
  const evil = `<img src=x onerror="alert(1)">'`;
  // Every field a line brings (its time, its stream, its text) is markup-free in the row: the
  // only tags are the row's own, and no attribute value is left open.
  const tags = (html: string) => [...html.matchAll(/<([a-z]+)/g)].map((m) => m[1]);
  it('escapes a time that is not a timestamp, in the text and in the title', () => {
    const html = rowMarkup(7, 'out', evil, 'hello', [], true);
    expect(tags(html)).toEqual(['div', 'span', 'span']);
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#39;');
  });
  it('escapes the text, with and without search marks and ANSI styles', () => {
    for (const ranges of [[], [[0, 4]]] as [number, number][][]) {
      const html = rowMarkup(1, 'err', '2024-01-02T03:04:05.678Z', `\x1b[31m${evil}\x1b[0m`, ranges, true);
      expect(html).not.toContain('<img');
      expect(tags(html).every((t) => ['div', 'span', 'mark'].includes(t))).toBe(true);
    }
  });
  it('keeps an unknown stream name out of the markup', () => {
    const html = rowMarkup(1, `x" onclick="alert(1)`, 'now', 'hi', [], false);
    expect(html).not.toContain('onclick="');
    expect(tags(html)).toEqual(['div', 'span']);
  });
});
