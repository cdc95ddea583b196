#!/usr/bin/env bash
# Inside Xvfb and a D-Bus session: an X11 tray, tauri-driver, then the WebDriver test.
set -uo pipefail
TAURI_DRIVER=$1
HERE=$(cd "$(dirname "$0")" && pwd)
trayer --edge top --align right --widthtype request --height 28 --transparent false &
TRAYER=$!
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NATIVE=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TAURI_DRIVER" --port "$PORT" --native-port "$NATIVE" --native-driver "$(command -v WebKitWebDriver)" &
DRIVER=$!
sleep 1.5
kill -0 "$DRIVER" 2>/dev/null || { echo "desktop-e2e: FAILED: tauri-driver did not start" >&2; exit 1; }
TAURI_DRIVER_URL=http://127.0.0.1:$PORT python3 "$HERE/desktop_e2e.py"
STATUS=$?
kill "$DRIVER" "$TRAYER" 2>/dev/null
wait "$DRIVER" "$TRAYER" 2>/dev/null
exit $STATUS
