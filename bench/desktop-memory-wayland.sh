#!/usr/bin/env bash
# The desktop app's memory on Wayland (weston's headless backend, GDK_BACKEND=wayland), one run
# per state, with a StatusNotifier watcher as the tray host: the window open (the shell, its
# window process and WebKit's), the shell after its window process ended, the same 60 s later,
# and the shell started in the tray (--hidden). Weston has no tool to close a window from
# outside, so "after the window" ends the window process with SIGTERM: the shell takes the same
# path as after an idle release (the window process ended → library pages paged out), plus a
# notification. RSS and PSS from smaps_rollup. Figures go to BENCHMARKS.md.
#   bench/desktop-memory-wayland.sh     release build (SKIP_BUILD=1: the binaries already built)
set -euo pipefail
die() { echo "desktop-memory-wayland: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
command -v weston >/dev/null || die "weston is missing: apt-get install weston"
command -v dbus-run-session >/dev/null || die "dbus-run-session is missing: apt-get install dbus-daemon"
PY=$("$ROOT/scripts/e2e/gi-python.sh") || die "no python3 with gi (the StatusNotifier watcher)"
if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$ROOT" && cargo build --release -p hangar -p hangar-demo -p hangar-desktop)
fi
BIN=$TARGET/release/hangar-desktop
[ -x "$BIN" ] || die "$BIN is missing"
WORK=$(mktemp -d /tmp/hangar-wl-mem.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export WORK BIN PY ROOT

# shellcheck disable=SC2016
dbus-run-session -- bash -c '
set -u
export XDG_RUNTIME_DIR=$WORK/xdg; mkdir -p "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
weston --backend=headless-backend.so --socket=hangar-bench --idle-time=0 >"$WORK/weston.log" 2>&1 &
WESTON=$!
for _ in $(seq 1 50); do [ -S "$XDG_RUNTIME_DIR/hangar-bench" ] && break; sleep 0.1; done
[ -S "$XDG_RUNTIME_DIR/hangar-bench" ] || { echo "weston did not start: $(tail -3 "$WORK/weston.log")" >&2; exit 1; }
export WAYLAND_DISPLAY=hangar-bench GDK_BACKEND=wayland HANGAR_BUILTIN_UI=1
unset DISPLAY
"$PY" "$ROOT/scripts/e2e/sni.py" watcher & WATCHER=$!
sleep 1
mb() { awk -v k="$2:" "\$1==k {printf \"%.0f\", \$2/1024}" "/proc/$1/smaps_rollup"; }
row() { echo "| $1 | $2 | $(mb "$3" Rss) | $(mb "$3" Pss) |"; }
home() { local h=$WORK/home$1; mkdir -p "$h"; printf "proxy_port = %s\napi_port = %s\n" "$2" "$(($2 + 1))" >"$h/hangar.toml"; echo "$h"; }
echo "| state | process | RSS MB | PSS MB |"
echo "| --- | --- | ---: | ---: |"
H=$(home 1 42101)
"$BIN" --home "$H" 2>>"$WORK/desktop.log" & P=$!
WIN=
for _ in $(seq 1 300); do
  WIN=$(pgrep -P "$P" -x hangar-desktop || true)
  [ -n "$WIN" ] && [ -n "$(pgrep -P "$WIN" -x WebKitWebProces || true)" ] && break
  sleep 0.1
done
[ -n "$WIN" ] || { echo "no window process" >&2; exit 1; }
sleep 10
row "window open" shell "$P"
row "window open" "window process" "$WIN"
for w in $(pgrep -P "$WIN"); do row "window open" "$(basename "$(readlink /proc/$w/exe)")" "$w"; done
echo "| window open | libLLVM mapped in the shell | $(grep -c libLLVM /proc/$P/maps || true) mappings | |"
kill "$WIN"; sleep 12
row "window process ended (tray only after a window)" shell "$P"
sleep 60
row "the same, 60 s later" shell "$P"
kill "$P"; wait "$P" 2>/dev/null || true
H=$(home 2 42111)
"$BIN" --home "$H" --hidden 2>>"$WORK/desktop.log" & P=$!
sleep 12
row "tray only from the start (--hidden)" shell "$P"
kill "$P"; wait "$P" 2>/dev/null || true
kill "$WATCHER" "$WESTON" 2>/dev/null
'
echo
echo "one run per state; $BIN; weston $(weston --version | cut -d" " -f2) headless, GDK_BACKEND=wayland"
