import { describe, expect, it } from 'vitest';
import { menuKey } from './menu';

describe('the keys of a row menu', () => {
  const all = [true, true, true, true];
  it('arrows move and wrap; Home and End go to the ends', () => {
    expect(menuKey('ArrowDown', 0, all)).toEqual({ focus: 1 });
    expect(menuKey('ArrowDown', 3, all)).toEqual({ focus: 0 });
    expect(menuKey('ArrowUp', 0, all)).toEqual({ focus: 3 });
    expect(menuKey('ArrowDown', -1, all)).toEqual({ focus: 0 });
    expect(menuKey('Home', 2, all)).toEqual({ focus: 0 });
    expect(menuKey('End', 0, all)).toEqual({ focus: 3 });
  });
  it('skips disabled items', () => {
    const some = [false, true, false, true];
    expect(menuKey('Home', 3, some)).toEqual({ focus: 1 });
    expect(menuKey('ArrowDown', 1, some)).toEqual({ focus: 3 });
    expect(menuKey('ArrowDown', 3, some)).toEqual({ focus: 1 });
    expect(menuKey('End', 1, [true, true, false])).toEqual({ focus: 1 });
  });
  it('Escape and Tab close it; other keys do nothing', () => {
    expect(menuKey('Escape', 1, all)).toEqual({ close: 'escape' });
    expect(menuKey('Tab', 1, all)).toEqual({ close: 'tab' });
    expect(menuKey('x', 1, all)).toBeNull();
    expect(menuKey('ArrowDown', -1, [])).toBeNull();
  });
});
