#!/usr/bin/env bash
# One NocoBase instance through Hangar (the `nocobase` preset) against the same instance started
# by hand (the same launcher, database, storage and app key, no supervisor): time from the start
# to the first 200 `ok` of its prefixed health path, and its resident memory once healthy.
# First the instance is created and installed through Hangar (the install time is printed too),
# then each way starts it RUNS times (default 3), one after the other, on an idle engine.
#
# Usage: bench/nocobase.sh [RUNS]
# Needs: a build of `hangar` (CARGO_TARGET_DIR or target/, debug unless PROFILE=release), the
# NocoBase of scripts/install-nocobase.sh, and a PostgreSQL data service: HANGAR_TEST_PG_URL
# (eval "$(scripts/test-db.sh start)").
set -euo pipefail
RUNS=${1:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
HANGAR=$TARGET/${PROFILE:-debug}/hangar
[ -x "$HANGAR" ] || { echo "no build at $HANGAR: cargo build --workspace" >&2; exit 1; }
: "${HANGAR_TEST_PG_URL:?a PostgreSQL data service: eval \"\$(scripts/test-db.sh start)\"}"
APP_DIR=$("$ROOT/scripts/install-nocobase.sh")
export PATH="$(dirname "$APP_DIR")/bin:$PATH"
WORK=$(mktemp -d /tmp/hangar-bench-nocobase.XXXXXX)
H="$WORK/home"
NAME=bench
HAND_PID=""
cleanup() {
  [ -n "$HAND_PID" ] && kill -KILL -- "-$HAND_PID" 2>/dev/null || true
  "$HANGAR" --home "$H" delete "$NAME" --drop-db --yes >/dev/null 2>&1 || true
  "$HANGAR" --home "$H" kill >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PROXY=$(free_port); API=$(free_port)
mkdir -p "$H"
cat >"$H/hangar.toml" <<EOF
proxy_port = $PROXY
api_port = $API
[data_service]
url = "$HANGAR_TEST_PG_URL"
[runtimes.nocobase]
preset = "nocobase"
cwd = "$APP_DIR"
EOF
hg() { "$HANGAR" --home "$H" "$@"; }
now_ms() { date +%s%3N; }
health="/_app/$NAME/api/__health_check"
# Waits for 200 `ok` on 127.0.0.1:$1$2; prints the ms since $3.
wait_ok() {
  local port=$1 path=$2 since=$3
  until [ "$(curl -s -m 2 "http://127.0.0.1:$port$path" 2>/dev/null)" = ok ]; do sleep 0.05; done
  echo $(($(now_ms) - since))
}
rss_mib() { awk '/^VmRSS/ {printf "%d", $2/1024}' "/proc/$1/status"; }
tree_mib() { # the process tree under $1 (NocoBase is one process, but count children anyway)
  local total=0 p
  for p in $(pgrep -g "$1" 2>/dev/null || echo "$1"); do
    total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  echo $((total / 1024))
}

t0=$(now_ms)
hg create "$NAME" --runtime nocobase --start-mode with-main >/dev/null
install_ms=$(wait_ok "$PROXY" "$health" "$t0")
echo "install (create to healthy, first start): ${install_ms} ms"
hg stop "$NAME" >/dev/null

echo "through Hangar (hangar start, to healthy through the proxy):"
for i in $(seq "$RUNS"); do
  t=$(now_ms)
  hg start "$NAME" >/dev/null
  ms=$(wait_ok "$PROXY" "$health" "$t")
  pid=$(hg status "$NAME" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
  sleep 2
  echo "  run $i: ${ms} ms to healthy, RSS $(rss_mib "$pid") MiB (tree $(tree_mib "$pid") MiB)"
  hg stop "$NAME" >/dev/null
done

# The same instance by hand: the environment Hangar gives it, from the registry and the preset.
eval "$(python3 - "$H/registry.db" "$NAME" <<'EOF'
import json, shlex, sqlite3, sys, urllib.parse
row = sqlite3.connect(sys.argv[1]).execute(
    "SELECT db_json, app_key, port, secret_env_json FROM apps WHERE name = ?", (sys.argv[2],)).fetchone()
db = json.loads(row[0]); u = urllib.parse.urlparse(db["url"])
env = {"DB_DIALECT": "postgres", "DB_HOST": u.hostname, "DB_PORT": str(u.port or 5432),
       "DB_DATABASE": u.path.lstrip("/"), "DB_USER": urllib.parse.unquote(u.username),
       "DB_PASSWORD": urllib.parse.unquote(u.password), "APP_KEY": row[1], "APP_PORT": str(row[2])}
env.update(json.loads(row[3]))
for k, v in env.items():
    print(f"export {k}={shlex.quote(v)}")
EOF
)"
export STORAGE_PATH="$H/apps/$NAME/storage" APP_PUBLIC_PATH="/_app/$NAME/" \
  API_CLIENT_STORAGE_PREFIX="NOCOBASE_${NAME}_" APP_HOST=127.0.0.1 APP_ENV=production \
  LOGGER_TRANSPORT=console
LAUNCHER="$ROOT/presets/nocobase-launch.js"
echo "by hand (node --preserve-symlinks presets/nocobase-launch.js start, to healthy on its port):"
for i in $(seq "$RUNS"); do
  t=$(now_ms)
  (cd "$APP_DIR" && exec setsid node --preserve-symlinks "$LAUNCHER" start >"$WORK/hand.log" 2>&1) &
  HAND_PID=$!
  ms=$(wait_ok "$APP_PORT" "$health" "$t")
  sleep 2
  echo "  run $i: ${ms} ms to healthy, RSS $(rss_mib "$HAND_PID") MiB"
  kill -TERM -- "-$HAND_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$HAND_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$HAND_PID" 2>/dev/null || true
  wait "$HAND_PID" 2>/dev/null || true
  HAND_PID=""
done
