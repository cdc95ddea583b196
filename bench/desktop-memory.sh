#!/usr/bin/env bash
# Memory of the desktop app under Xvfb with a StatusNotifier watcher (the tray host a desktop
# panel runs), against the same engine headless (`hangar serve`) in the same run: the shell with
# its window open, after the hidden window's webview was released (no webview left), and started
# in the tray only (--hidden); the same with --single-process (windows in the shell's own process);
# and how long a second launch takes to bring the released window back, in both layouts. RSS, PSS
# and anonymous memory of the shell, its window process and each WebKit process (smaps_rollup),
# the apps apart. Figures go to BENCHMARKS.md.
#   bench/desktop-memory.sh            release build (SKIP_BUILD=1: the binaries already built)
#   PROFILE=debug BIN_DIR=... bench/desktop-memory.sh   other binaries (e.g. a baseline build)
# Extra environment passes through, e.g. WEBKIT_DISABLE_COMPOSITING_MODE=0 (the WebKit default).
set -euo pipefail
die() { echo "desktop-memory: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-release}
for t in xvfb-run dbus-run-session xdotool; do command -v $t >/dev/null || die "$t is missing"; done
PY=$("$ROOT/scripts/e2e/gi-python.sh") || die "no python3 with gi (the StatusNotifier watcher)"
if [ -z "${SKIP_BUILD:-}" ] && [ -z "${BIN_DIR:-}" ]; then
  flag=(); [ "$PROFILE" = release ] && flag=(--release)
  (cd "$ROOT" && cargo build "${flag[@]}" -p hangar -p hangar-demo -p hangar-desktop)
fi
export BIN_DIR=${BIN_DIR:-$TARGET/$PROFILE}
[ -x "$BIN_DIR/hangar-desktop" ] || die "$BIN_DIR/hangar-desktop is missing"
export WORK=$(mktemp -d /tmp/hangar-desktop-mem.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export ROOT
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- "$PY" "$ROOT/bench/desktop_memory.py"
