// The keys of a menu button's menu (the WAI-ARIA menu button pattern): arrows move through the
// items and wrap, Home and End go to the ends, Escape closes it (focus back on its button), Tab
// closes it and lets focus move on. Disabled items are skipped.

export type MenuMove = { focus: number } | { close: 'escape' | 'tab' } | null;

/** What `key` does in a menu of `enabled.length` items with the item `at` focused (-1: none). */
export function menuKey(key: string, at: number, enabled: readonly boolean[]): MenuMove {
  const n = enabled.length;
  const step = (from: number, dir: 1 | -1): number => {
    for (let i = 1; i <= n; i++) {
      const j = (((from + dir * i) % n) + n) % n;
      if (enabled[j]) return j;
    }
    return -1;
  };
  switch (key) {
    case 'ArrowDown':
      return n ? { focus: step(at < 0 ? -1 : at, 1) } : null;
    case 'ArrowUp':
      return n ? { focus: step(at < 0 ? 0 : at, -1) } : null;
    case 'Home':
      return n ? { focus: step(-1, 1) } : null;
    case 'End':
      return n ? { focus: step(0, -1) } : null;
    case 'Escape':
      return { close: 'escape' };
    case 'Tab':
      return { close: 'tab' };
    default:
      return null;
  }
}
