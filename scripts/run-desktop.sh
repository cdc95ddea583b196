#!/usr/bin/env bash
# Start Hangar's desktop app: installs the system libraries it needs (apt, once), builds, runs.
# Without a display (no DISPLAY / WAYLAND_DISPLAY), it runs the same engine headless with
# `hangar serve` instead. Arguments go to the program (e.g. --home DIR).
#   scripts/run-desktop.sh [--home DIR] ...        PROFILE=release for an optimised build
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PROFILE=${PROFILE:-debug}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
FLAG=""; [ "$PROFILE" = release ] && FLAG="--release"

headless() {
  cargo build $FLAG -p hangar -p hangar-demo
  exec "$TARGET/$PROFILE/hangar" "$@" serve
}

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run-desktop: no display; running the engine headless (hangar serve). Open the URL it prints." >&2
  headless "$@"
fi

# Build and run-time libraries of the desktop shell (Tauri 2 on WebKitGTK 4.1).
PKGS="libwebkit2gtk-4.1-dev build-essential libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev pkg-config"
missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "run-desktop: installing $missing" >&2
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y --no-install-recommends $missing
fi

cargo build $FLAG -p hangar -p hangar-demo -p hangar-desktop
exec "$TARGET/$PROFILE/hangar-desktop" "$@"
