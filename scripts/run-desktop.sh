#!/usr/bin/env bash
# Install what is needed, build, and start Hangar's desktop app (window + tray icon), hosting the
# engine: the main demo app on http://127.0.0.1:13000/, the control panel in the window.
# Without a display (no DISPLAY / WAYLAND_DISPLAY), or with --headless, it runs the same engine
# headless with `hangar serve` instead. Other arguments go to the program (e.g. --home DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

headless=""
args=()
for a in "$@"; do
  if [ "$a" = --headless ]; then headless=1; else args+=("$a"); fi
done
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  [ -n "$headless" ] || echo "run-desktop: no display; running the engine headless (hangar serve) instead" >&2
  headless=1
fi

if [ -n "$headless" ]; then
  scripts/install-deps.sh run
else
  scripts/install-deps.sh run desktop
fi
. scripts/env.sh

# The control panel (ui/dist), when node is there to build it; without it the window shows the
# shell's own minimal pages.
if [ ! -f ui/dist/index.html ] && command -v npm >/dev/null 2>&1; then
  echo "run-desktop: building the control panel (ui/)" >&2
  (cd ui && npm ci --no-audit --no-fund && npm run build) >&2
fi

# One build for both README commands: where the desktop's libraries are installed this is the
# very build `scripts/test.sh` makes (the same packages, targets and features), so running one
# after the other compiles nothing twice. A server without them builds the engine alone.
if [ -n "$headless" ] && ! pkg-config --exists webkit2gtk-4.1 2>/dev/null; then
  cargo build -p hangar -p hangar-demo
else
  scripts/build.sh
fi
scripts/link-bin.sh

if [ -n "$headless" ]; then
  echo "Starting Hangar headless (Ctrl-C stops it and every app)…" >&2
  exec "$HANGAR_BIN" "${args[@]}" serve
fi
echo "Starting Hangar's desktop app (Quit in the tray, or Ctrl-C, stops it and every app)…" >&2
exec "$CARGO_TARGET_DIR/debug/hangar-desktop" "${args[@]}"
