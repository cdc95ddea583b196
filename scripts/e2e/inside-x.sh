#!/usr/bin/env bash
# Inside Xvfb and a D-Bus session: a StatusNotifier watcher (the tray host a desktop panel
# runs), tauri-driver, then the WebDriver test. $E2E_PYTHON has python3-gi.
set -uo pipefail
TAURI_DRIVER=$1
HERE=$(cd "$(dirname "$0")" && pwd)
"$E2E_PYTHON" "$HERE/sni.py" watcher &
WATCHER=$!
up=
for _ in $(seq 1 50); do
  PYTHONPATH=$HERE "$E2E_PYTHON" -c 'import sys, sni; sys.exit(0 if sni.watcher_running() else 1)' 2>/dev/null && { up=1; break; }
  sleep 0.1
done
[ -n "$up" ] || { echo "desktop-e2e: FAILED: the StatusNotifier watcher did not start" >&2; exit 1; }
PORT=$("$E2E_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NATIVE=$("$E2E_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TAURI_DRIVER" --port "$PORT" --native-port "$NATIVE" --native-driver "$(command -v WebKitWebDriver)" &
DRIVER=$!
sleep 1.5
kill -0 "$DRIVER" 2>/dev/null || { echo "desktop-e2e: FAILED: tauri-driver did not start" >&2; exit 1; }
TAURI_DRIVER_URL=http://127.0.0.1:$PORT "$E2E_PYTHON" "$HERE/desktop_e2e.py"
STATUS=$?
kill "$DRIVER" "$WATCHER" 2>/dev/null
wait "$DRIVER" "$WATCHER" 2>/dev/null
exit $STATUS
