#!/usr/bin/env bash
# Hangar against pm2 on the same 50 small node apps, in one run: time until all answer, listing
# latency, supervisor memory, idle CPU (supervisor and apps, so what a supervisor injects into
# its apps is counted). pm2 is installed from npm into a temporary folder; node must be there.
# Usage: bench/vs-pm2.sh [N]   (needs a release build: cargo build --release)
set -euo pipefail
N=${1:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
HANGAR=$TARGET/release/hangar
[ -x "$HANGAR" ] || { echo "no release build at $HANGAR: run cargo build --release" >&2; exit 1; }
command -v node >/dev/null || { echo "node is needed (pm2 and the apps run on it)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/hangar-vs-pm2.XXXXXX)
H="$WORK/hangar-home"
export PM2_HOME="$WORK/pm2-home"
PM2="$WORK/node_modules/.bin/pm2"
ENGINE_PID=""
cleanup() {
  if [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; then "$HANGAR" --home "$H" kill >/dev/null 2>&1 || true; fi
  [ -x "$PM2" ] && "$PM2" kill >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
TCK=$(getconf CLK_TCK)
IDLE_SECS=${IDLE_SECS:-30}

cat > "$WORK/app.js" <<'EOF'
const http = require('http');
http.createServer((req, res) => { res.end('ok'); })
  .listen(Number(process.env.PORT), '127.0.0.1');
EOF
# Waits until every port answers HTTP; prints the ms since the start time given.
cat > "$WORK/wait.js" <<'EOF'
const http = require('http');
const start = Number(process.argv[2]);
const ports = process.argv.slice(3).map(Number);
let left = new Set(ports);
function poll() {
  for (const p of [...left]) {
    const req = http.get({ host: '127.0.0.1', port: p, path: '/_health', agent: false }, (res) => {
      res.resume();
      if (res.statusCode === 200 && left.delete(p) && left.size === 0) {
        console.log(Date.now() - start);
        process.exit(0);
      }
    });
    req.on('error', () => {});
    req.setTimeout(1000, () => req.destroy());
  }
  setTimeout(poll, 5);
}
poll();
setTimeout(() => { console.log('timeout'); process.exit(1); }, 120000);
EOF

cpu_ticks() { # sum of utime+stime of the given pids
  local sum=0 p
  for p in "$@"; do
    if [ -r "/proc/$p/stat" ]; then
      sum=$((sum + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    fi
  done
  echo "$sum"
}
rss_kib() { local sum=0 p; for p in "$@"; do sum=$((sum + $(awk '/^VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo "$sum"; }
descendants() { # every descendant pid of $1
  local kids; kids=$(pgrep -P "$1" || true)
  for k in $kids; do echo "$k"; descendants "$k"; done
}
median_ms() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p95_ms() { sort -n | awk '{a[NR]=$1} END {i=int(NR*0.95); if (i<1) i=1; print a[i]}'; }
time_cmd_ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }

echo "installing pm2 from npm into $WORK ..." >&2
(cd "$WORK" && npm install --silent --no-audit --no-fund --no-save pm2 >/dev/null 2>&1)
PM2_VERSION=$("$PM2" --version 2>/dev/null | tail -1)

# ---------------------------------------------------------------- no supervisor (the floor)
echo "bare: starting $N node processes from a shell ..." >&2
BPORTS=(); BPIDS=()
T0=$(date +%s%3N)
node "$WORK/wait.js" "$T0" $(seq 19001 $((19000 + N))) >"$WORK/b-ready" &
WAITER=$!
for i in $(seq 1 "$N"); do PORT=$((19000 + i)) node "$WORK/app.js" & BPIDS+=($!); done
wait "$WAITER"
B_READY=$(cat "$WORK/b-ready")
kill "${BPIDS[@]}" 2>/dev/null || true
wait "${BPIDS[@]}" 2>/dev/null || true
sleep 2

# ---------------------------------------------------------------- Hangar
mkdir -p "$H"
cat > "$H/hangar.toml" <<EOF
proxy_port = 17990
api_port = 17991
app_ports = "17100-17199"
[main]
enabled = false
[runtimes.node]
command = ["node", "$WORK/app.js"]
health = "/_health"
EOF
"$HANGAR" --home "$H" serve >"$WORK/serve.log" 2>&1 &
ENGINE_PID=$!
for _ in $(seq 1 200); do [ -f "$H/engine.json" ] && break; sleep 0.05; done
sleep 0.3
HPORTS=()
for i in $(seq 1 "$N"); do
  "$HANGAR" --home "$H" create "a$i" --runtime node --port $((17000 + i)) >/dev/null
  HPORTS+=($((17000 + i)))
done
echo "hangar: starting $N apps ..." >&2
T0=$(date +%s%3N)
node "$WORK/wait.js" "$T0" "${HPORTS[@]}" >"$WORK/h-ready" &
WAITER=$!
seq 1 "$N" | xargs -P "$N" -I{} "$HANGAR" --home "$H" start "a{}" >/dev/null
wait "$WAITER"
H_READY=$(cat "$WORK/h-ready")
sleep 10
H_APPS=$(descendants "$ENGINE_PID" | tr '\n' ' ')
c0=$(cpu_ticks "$ENGINE_PID"); a0=$(cpu_ticks $H_APPS)
sleep "$IDLE_SECS"
c1=$(cpu_ticks "$ENGINE_PID"); a1=$(cpu_ticks $H_APPS)
H_CPU=$(awk -v d=$((c1 - c0)) -v t="$TCK" -v s="$IDLE_SECS" 'BEGIN{printf "%.2f", d / t / s * 100}')
H_APPS_CPU=$(awk -v d=$((a1 - a0)) -v t="$TCK" -v s="$IDLE_SECS" 'BEGIN{printf "%.2f", d / t / s * 100}')
H_RSS=$(rss_kib "$ENGINE_PID")
H_APPS_RSS=$(rss_kib $H_APPS)
H_LIST=$(for _ in $(seq 1 20); do time_cmd_ms "$HANGAR" --home "$H" list --json; done)
H_LIST_MED=$(echo "$H_LIST" | median_ms); H_LIST_P95=$(echo "$H_LIST" | p95_ms)
H_COUNT=$("$HANGAR" --home "$H" list --json | grep -c '"status": "running"' || true)
"$HANGAR" --home "$H" kill >/dev/null
ENGINE_PID=""

# ---------------------------------------------------------------- pm2
{
  echo "module.exports = { apps: ["
  for i in $(seq 1 "$N"); do echo "  { name: 'a$i', script: '$WORK/app.js', env: { PORT: '$((18000 + i))' } },"; done
  echo "] };"
} >"$WORK/ecosystem.config.js"
PPORTS=(); for i in $(seq 1 "$N"); do PPORTS+=($((18000 + i))); done
"$PM2" ping >/dev/null 2>&1
echo "pm2: starting $N apps ..." >&2
T0=$(date +%s%3N)
node "$WORK/wait.js" "$T0" "${PPORTS[@]}" >"$WORK/p-ready" &
WAITER=$!
"$PM2" start "$WORK/ecosystem.config.js" >/dev/null 2>&1
wait "$WAITER"
P_READY=$(cat "$WORK/p-ready")
sleep 10
PM2_PID=$(cat "$PM2_HOME/pm2.pid")
P_APPS=$(descendants "$PM2_PID" | tr '\n' ' ')
c0=$(cpu_ticks "$PM2_PID"); a0=$(cpu_ticks $P_APPS)
sleep "$IDLE_SECS"
c1=$(cpu_ticks "$PM2_PID"); a1=$(cpu_ticks $P_APPS)
P_CPU=$(awk -v d=$((c1 - c0)) -v t="$TCK" -v s="$IDLE_SECS" 'BEGIN{printf "%.2f", d / t / s * 100}')
P_APPS_CPU=$(awk -v d=$((a1 - a0)) -v t="$TCK" -v s="$IDLE_SECS" 'BEGIN{printf "%.2f", d / t / s * 100}')
P_RSS=$(rss_kib "$PM2_PID")
P_APPS_RSS=$(rss_kib $P_APPS)
P_LIST=$(for _ in $(seq 1 20); do time_cmd_ms "$PM2" jlist; done)
P_LIST_MED=$(echo "$P_LIST" | median_ms); P_LIST_P95=$(echo "$P_LIST" | p95_ms)
P_COUNT=$("$PM2" jlist 2>/dev/null | grep -o '"status":"online"' | wc -l)
"$PM2" kill >/dev/null 2>&1 || true

mib() { awk -v k="$1" 'BEGIN{printf "%.1f MiB", k / 1024}'; }
echo
echo "| $N node apps, same machine, same run | Hangar | pm2 $PM2_VERSION |"
echo "| --- | --- | --- |"
echo "| apps running at the end | $H_COUNT | $P_COUNT |"
echo "| time from the start command until all $N answer HTTP | ${H_READY} ms | ${P_READY} ms |"
echo "| the same $N node processes started by a plain shell, no supervisor (the floor) | ${B_READY} ms | |"
echo "| \`hangar list --json\` / \`pm2 jlist\`, median (p95) of 20 | ${H_LIST_MED} ms (${H_LIST_P95}) | ${P_LIST_MED} ms (${P_LIST_P95}) |"
echo "| supervisor memory (RSS) | $(mib "$H_RSS") | $(mib "$P_RSS") |"
echo "| the $N apps' memory (RSS, sum) | $(mib "$H_APPS_RSS") | $(mib "$P_APPS_RSS") |"
echo "| supervisor CPU when idle (% of a core, ${IDLE_SECS} s) | ${H_CPU} % | ${P_CPU} % |"
echo "| the $N apps' CPU when idle (% of a core, sum) | ${H_APPS_CPU} % | ${P_APPS_CPU} % |"
