#!/usr/bin/env bash
# Install what is needed, build, and run Hangar on its embedded defaults: the desktop app (window
# and tray icon) hosting the engine, the main demo app on http://127.0.0.1:13000/ and the API on
# 127.0.0.1:13001. Without a display, or with --headless, it runs `hangar serve` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/run-desktop.sh "$@"
