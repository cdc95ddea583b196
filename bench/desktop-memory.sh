#!/usr/bin/env bash
# Memory of the desktop app (release build) under Xvfb with an X11 tray, against the same engine
# headless (`hangar serve`) in the same run: the shell with its window open, after the hidden
# window's webview was released, and started in the tray only (--hidden). RSS in MB of the shell
# process, its WebKit processes, and (apart) the apps it runs. Figures go to BENCHMARKS.md.
#   bench/desktop-memory.sh            (SKIP_BUILD=1 to use the release binaries already built)
set -euo pipefail
die() { echo "desktop-memory: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
for t in xvfb-run dbus-run-session trayer xdotool python3; do command -v $t >/dev/null || die "$t is missing"; done
if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$ROOT" && cargo build --release -p hangar -p hangar-demo -p hangar-desktop)
fi
export BIN_DIR=$TARGET/release
[ -x "$BIN_DIR/hangar-desktop" ] || die "$BIN_DIR/hangar-desktop is missing"
export WORK=$(mktemp -d /tmp/hangar-desktop-mem.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export ROOT
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- python3 "$ROOT/bench/desktop_memory.py"
