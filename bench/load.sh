#!/usr/bin/env bash
# Load (issue 8): 1000 concurrent connections spread over 50 running apps through the proxy for
# DURATION seconds (default 60), counting every error that is not the apps' own; then 200
# registered apps with 50 running and the time `hangar list --json` takes.
# Usage: bench/load.sh [DURATION]   (release build; figures go to stdout for BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-60}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
. scripts/env.sh
command -v wrk >/dev/null || { echo "load: wrk is missing (scripts/install-deps.sh test)" >&2; exit 1; }
cargo build --release --workspace --bins >&2
bin="$CARGO_TARGET_DIR/release/hangar"
export HANGAR_DEMO_BIN="$CARGO_TARGET_DIR/release/hangar-demo"
home="$(mktemp -d)"
proxy=$((20000 + RANDOM % 10000)); api=$((proxy + 1))
# wrk opens its 1000 connections from one address: above the default max_connections_per_ip.
printf 'proxy_port = %s\napi_port = %s\napp_ports = "31000-31999"\nmax_connections_per_ip = 4096\n' "$proxy" "$api" > "$home/hangar.toml"
cleanup() { "$bin" --home "$home" kill >/dev/null 2>&1 || true; rm -rf "$home"; }
trap cleanup EXIT
"$bin" --home "$home" serve >"$home/serve.log" 2>&1 &
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$proxy/_health" >/dev/null 2>&1 && break; sleep 0.1; done

echo "creating 200 apps, starting 50…" >&2
for i in $(seq 1 200); do "$bin" --home "$home" create "l$i" >/dev/null; done
starts=()
for i in $(seq 1 50); do "$bin" --home "$home" start "l$i" >/dev/null & starts+=($!); done
wait "${starts[@]}"   # not the engine, which runs in the background too
running=$("$bin" --home "$home" list --json | grep -c '"status": "running"')
echo "running apps: $running (the main app included)"

# list latency: 50 runs of the real CLI, median and p95 in ms.
times=()
for _ in $(seq 50); do
  s=$(date +%s%N); "$bin" --home "$home" list --json >/dev/null; e=$(date +%s%N)
  times+=($(( (e - s) / 1000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "hangar list --json with 200 apps, 50 running: median $((sorted[25] / 1000)).$(( (sorted[25] % 1000) / 100 )) ms, p95 $((sorted[47] / 1000)).$(( (sorted[47] % 1000) / 100 )) ms (whole CLI process)"
# and the API call alone, as the UI makes it
api_times=()
token=$(cat "$home/token")
for _ in $(seq 50); do
  t=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" "http://127.0.0.1:$api/api/v1/apps")
  api_times+=("$t")
done
echo "GET /api/v1/apps alone: median $(printf '%s\n' "${api_times[@]}" | sort -n | sed -n 25p) s"

lua="$home/paths.lua"
cat > "$lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/_app/l" .. ((n % 50) + 1) .. "/api/info")
end
LUA
echo "wrk: 1000 connections over 50 apps for ${duration}s…" >&2
out=$(wrk -t2 -c1000 -d"${duration}s" --timeout 10s -s "$lua" "http://127.0.0.1:$proxy/")
echo "$out"
non2xx=$(echo "$out" | sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p'); non2xx=${non2xx:-0}
errors=$(echo "$out" | sed -n 's/.*Socket errors: \(.*\)/\1/p'); errors=${errors:-none}
echo "non-2xx answers: $non2xx; socket errors: $errors"
restarts=$("$bin" --home "$home" list --json | grep -o '"restarts": [0-9]*' | awk '{s+=$2} END {print s+0}')
echo "app restarts during the run: $restarts"
