// The arithmetic of the virtualised log list. Rows have a nominal height; the scroll area is that
// height times the row count, capped (browsers stop laying out past ~16–33 M px), and beyond the
// cap scroll positions map proportionally onto rows.

export const MAX_SCROLL_PX = 8_000_000;

/** The height of the scroll area for `rows` rows. */
export function scrollHeight(rows: number, rowHeight: number): number {
  return Math.min(rows * rowHeight, MAX_SCROLL_PX);
}

/** The largest scrollTop. */
export function maxScrollTop(rows: number, rowHeight: number, viewport: number): number {
  return Math.max(0, scrollHeight(rows, rowHeight) - viewport);
}

/** The first row at a scroll position, and how far (px) into it the top edge is. */
export function rowAt(scrollTop: number, rows: number, rowHeight: number, viewport: number): { first: number; offset: number } {
  if (rows <= 0) return { first: 0, offset: 0 };
  const full = rows * rowHeight;
  const top = Math.max(0, Math.min(scrollTop, maxScrollTop(rows, rowHeight, viewport)));
  let exact: number;
  if (full <= MAX_SCROLL_PX) {
    exact = top / rowHeight;
  } else {
    const maxTop = maxScrollTop(rows, rowHeight, viewport);
    const maxRow = Math.max(0, rows - viewport / rowHeight);
    exact = maxTop > 0 ? (top / maxTop) * maxRow : 0;
  }
  const first = Math.min(rows - 1, Math.floor(exact));
  return { first, offset: (exact - first) * rowHeight };
}

/** The scroll position that puts `row` at the top (the inverse of rowAt). */
export function scrollTopFor(row: number, rows: number, rowHeight: number, viewport: number): number {
  const full = rows * rowHeight;
  const maxTop = maxScrollTop(rows, rowHeight, viewport);
  let top: number;
  if (full <= MAX_SCROLL_PX) top = row * rowHeight;
  else {
    const maxRow = Math.max(0, rows - viewport / rowHeight);
    top = maxRow > 0 ? (row / maxRow) * maxTop : 0;
  }
  return Math.max(0, Math.min(maxTop, top));
}

/** How many rows to render to fill the viewport, with some spare. */
export function rowsToRender(viewport: number, rowHeight: number, overscan = 2): number {
  return Math.max(1, Math.ceil(viewport / rowHeight) + overscan);
}

/** True when the scroll position is at (or within `slack` px of) the end. */
export function atEnd(scrollTop: number, rows: number, rowHeight: number, viewport: number, slack = 4): boolean {
  return scrollTop >= maxScrollTop(rows, rowHeight, viewport) - slack;
}

/** The scroll position that brings `row` into view with the least movement, or null if it is. */
export function revealRow(row: number, scrollTop: number, rows: number, rowHeight: number, viewport: number): number | null {
  const { first } = rowAt(scrollTop, rows, rowHeight, viewport);
  const visible = Math.max(1, Math.floor(viewport / rowHeight));
  if (row >= first && row < first + visible) return null;
  // Centre it.
  return scrollTopFor(Math.max(0, row - Math.floor(visible / 2)), rows, rowHeight, viewport);
}
