#!/usr/bin/env bash
# The desktop app end to end, in a real window under Xvfb with a D-Bus session and a
# StatusNotifier watcher (scripts/e2e/sni.py, the tray host a desktop panel runs), driven over W3C
# WebDriver by tauri-driver + WebKitWebDriver, its tray driven over D-Bus as a panel does
# (com.canonical.dbusmenu GetLayout / AboutToShow / Event "clicked"):
#   the window lists the apps; Start from the window works; a sub-app made in the window's form
#   starts from the window and answers through the proxy; the tray menu follows the engine
#   (window, tray and CLI changes) and its Start, Stop, Start all, Stop all act on the engine; the
#   log window shows a line made by requesting the app; closing the main window keeps the process
#   and the proxy serving; the hidden webview is released and, with no webview left, WebKit's
#   processes end; the tray's Open Hangar and a second launch (single instance) rebuild the
#   window; the tray's Quit leaves no app process behind; with `hangar serve` already running on
#   a home, the app attaches to it and its tray's Quit ends that engine too; with no tray,
#   closing the window quits with nothing left. The windows live in a child process (`--window`):
#   the e2e checks that the desktop app itself never maps Mesa's GL libraries. Screenshots go to
#   test-output/desktop/.
# Fails loudly when a part is missing. SKIP_BUILD=1 uses the binaries already built;
# HANGAR_DESKTOP_BIN / HANGAR_BIN test other binaries (e.g. the installed .deb's).
set -euo pipefail

die() { echo "desktop-e2e: FAILED: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: $2"; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

need xvfb-run "apt-get install xvfb xauth"
need dbus-run-session "apt-get install dbus-daemon"
need WebKitWebDriver "apt-get install webkit2gtk-driver"
need import "apt-get install imagemagick"
need xdotool "apt-get install xdotool"
need python3 "apt-get install python3"
# The tray is read and clicked over D-Bus with python3-gi (Debian's, for the system python).
E2E_PYTHON=$("$ROOT/scripts/e2e/gi-python.sh") || die "no python3 with gi"
export E2E_PYTHON
need pgrep "apt-get install procps"
TAURI_DRIVER=${TAURI_DRIVER:-$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")}
[ -x "$TAURI_DRIVER" ] || die "tauri-driver is missing: cargo install tauri-driver --locked"
ldconfig -p | grep libayatana-appindicator3.so.1 >/dev/null \
  || die "libayatana-appindicator3-1 is missing (the tray loads it at run time): apt-get install libayatana-appindicator3-1"

if [ -z "${SKIP_BUILD:-}" ]; then
  "$ROOT/scripts/build.sh"
fi
export HANGAR_DESKTOP_BIN=${HANGAR_DESKTOP_BIN:-$TARGET/debug/hangar-desktop}
HANGAR=${HANGAR_BIN:-$TARGET/debug/hangar}
[ -x "$HANGAR_DESKTOP_BIN" ] || die "$HANGAR_DESKTOP_BIN is missing: cargo build -p hangar-desktop"
[ -x "$HANGAR" ] || die "$HANGAR is missing: cargo build -p hangar"

export E2E_OUT=$ROOT/test-output/desktop
mkdir -p "$E2E_OUT"
rm -f "$E2E_OUT"/*.png "$E2E_OUT"/run.log

WORK=$(mktemp -d /tmp/hangar-desktop-e2e.XXXXXX)
cleanup() {
  # Only what this script started: an engine left on the temporary home, by its recorded pid.
  for h in "$WORK/home" "$WORK/home2"; do
    if [ -f "$h/engine.json" ]; then
      pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$h/engine.json" 2>/dev/null || true)
      [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export HANGAR_HOME=$WORK/home
export E2E_PROXY_PORT=$(free_port) E2E_API_PORT=$(free_port)
mkdir -p "$HANGAR_HOME"
printf 'proxy_port = %s\napi_port = %s\n' "$E2E_PROXY_PORT" "$E2E_API_PORT" > "$HANGAR_HOME/hangar.toml"

# A second home, where `hangar serve` will already run when the desktop app starts (attach).
export E2E_HOME2=$WORK/home2 E2E_HANGAR_BIN=$HANGAR
mkdir -p "$E2E_HOME2"
printf 'proxy_port = %s\napi_port = %s\n' "$(free_port)" "$(free_port)" > "$E2E_HOME2/hangar.toml"

# An app made with the CLI beforehand (its engine is then stopped), as a user would have.
"$HANGAR" create blog --display-name "The blog" >/dev/null
"$HANGAR" kill >/dev/null
for _ in $(seq 1 300); do [ -f "$HANGAR_HOME/engine.json" ] || break; sleep 0.1; done
[ ! -f "$HANGAR_HOME/engine.json" ] || die "the CLI's engine did not stop"

# Which control panel the windows show: `engine` (ui/, served by the engine; the default) or
# `builtin` (the pages inside the shell, used when ui/ is not built).
export E2E_UI=${E2E_UI:-engine}
case "$E2E_UI" in
  engine)
    if [ -z "${HANGAR_UI_DIR:-}" ] && [ "$HANGAR_DESKTOP_BIN" = "$TARGET/debug/hangar-desktop" ]; then
      [ -f "$ROOT/ui/dist/index.html" ] \
        || die "ui/dist is missing: build the control panel (npm --prefix ui ci && npm --prefix ui run build), or run with E2E_UI=builtin"
      export HANGAR_UI_DIR=$ROOT/ui/dist
    fi ;;
  builtin) export HANGAR_BUILTIN_UI=1 ;;
  *) die "E2E_UI is $E2E_UI; accepted: engine, builtin" ;;
esac
# Release the hidden main window's webview quickly, so the test sees it happen.
export HANGAR_RELEASE_AFTER=5
export HANGAR_LOG=${HANGAR_LOG:-info}

echo "desktop-e2e: $E2E_UI control panel, home $HANGAR_HOME, proxy $E2E_PROXY_PORT, API $E2E_API_PORT, logs in $E2E_OUT"
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
  bash "$ROOT/scripts/e2e/inside-x.sh" "$TAURI_DRIVER" 2>&1 | tee "$E2E_OUT/run.log"
exit "${PIPESTATUS[0]}"
