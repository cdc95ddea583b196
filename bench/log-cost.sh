#!/usr/bin/env bash
# The supervisor's CPU per log line, Hangar (one or more builds) against pm2, in one run: the same
# app prints (1) a trickle, one line per write at RATE lines/s (an app logging each request),
# then (2) a burst of BURST lines in 64 KiB writes. The supervisor's CPU (utime+stime of its
# whole process from /proc, threads that ended included) is read before the first line and
# when the last one is in the log file, minus its idle CPU over the same time; every line is
# counted in the files afterwards (none may be lost).
#
# Usage: bench/log-cost.sh            (release builds: cargo build --release)
#   HANGAR_BINS="before=/path/hangar after=/path/hangar"   builds to compare (default: this
#                                       tree's release build, labelled "Hangar")
#   RATE=2000 SECS=30 BURST=300000      the trickle's rate and length, the burst's size
#   PM2=path/to/pm2                     default: pm2 installed from npm into
#                                       ~/.cache/hangar-bench/pm2 (outside the clone)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RATE=${RATE:-2000}
SECS=${SECS:-30}
BURST=${BURST:-300000}
TRICKLE=$((RATE * SECS))
HANGAR_BINS=${HANGAR_BINS:-"Hangar=$TARGET/release/hangar"}
command -v python3 >/dev/null || { echo "python3 is needed (the app is a Python script)" >&2; exit 1; }
# The interpreter itself, not a shim (pyenv's shims run a script under ~/.pyenv that a confined
# app is not granted): both supervisors run the same program.
PY=$(python3 -c 'import sys; print(sys.executable)')
if [ -z "${PM2:-}" ]; then
  PM2_DIR=${PM2_DIR:-$HOME/.cache/hangar-bench/pm2}
  PM2=$PM2_DIR/node_modules/.bin/pm2
  if [ ! -x "$PM2" ]; then
    echo "installing pm2 from npm into $PM2_DIR ..." >&2
    mkdir -p "$PM2_DIR"
    (cd "$PM2_DIR" && npm install --silent --no-audit --no-fund pm2 >/dev/null 2>&1)
  fi
fi
WORK=$(mktemp -d /tmp/hangar-log-cost.XXXXXX)
export PM2_HOME="$WORK/pm2-home"
TCK=$(getconf CLK_TCK)
ENGINE=""
ENGINE_HOME=""
cleanup() {
  if [ -n "$ENGINE" ]; then "$ENGINE" --home "$ENGINE_HOME" kill >/dev/null 2>&1 || true; fi
  "$PM2" kill >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The app: answers /_health, waits for its go files, then prints the trickle and the burst.
cat >"$WORK/emit.py" <<'EOF'
import http.server, os, sys, threading, time
work, tag = sys.argv[1], sys.argv[2]
rate, trickle, burst = (int(os.environ[k]) for k in ("RATE", "TRICKLE", "BURST"))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
def wait(name):
    while not os.path.exists(os.path.join(work, f"go-{name}-{tag}")):
        time.sleep(0.02)
pad = "x" * 24
wait("trickle")
start, step = time.monotonic(), 1.0 / rate
for i in range(trickle):
    os.write(1, f"GET /api/notes 200 1ms trickle line {i} {pad}\n".encode())
    delay = start + (i + 1) * step - time.monotonic()
    if delay > 0:
        time.sleep(delay)
wait("burst")
buf, i = [], 0
while i < burst:
    buf.append(f"GET /api/notes 200 1ms burst line {i} {pad}\n"); i += 1
    if len(buf) == 700 or i == burst:
        os.write(1, "".join(buf).encode()); buf = []
while True:
    time.sleep(3600)
EOF

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# Waits until the file's end holds `needle`.
wait_line() {
  local file=$1 needle=$2
  for _ in $(seq 1 6000); do
    if [ -f "$file" ] && tail -c 4096 "$file" | grep -q "$needle"; then return 0; fi
    sleep 0.05
  done
  echo "timed out waiting for '$needle' in $file" >&2
  return 1
}
wait_port() { for _ in $(seq 1 400); do curl -fs "http://127.0.0.1:$1/_health" >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
ms() { date +%s%3N; }

# One measurement: PID of the supervisor, the app's log file (glob for all its files), the tag.
# Prints "trickle_us burst_us trickle_lines burst_lines idle_pct".
measure() {
  local pid=$1 file=$2 files=$3 tag=$4
  sleep 3
  # Idle CPU over 5 s, to subtract.
  local i0 i1 t0 t1 c0 c1 c2 w0 w1 w2
  i0=$(cpu_ticks "$pid"); sleep 5; i1=$(cpu_ticks "$pid")
  local idle_per_ms
  idle_per_ms=$(awk -v d=$((i1 - i0)) 'BEGIN{print d / 5000}')
  c0=$(cpu_ticks "$pid"); w0=$(ms)
  touch "$WORK/go-trickle-$tag"
  wait_line "$file" "trickle line $((TRICKLE - 1)) "
  c1=$(cpu_ticks "$pid"); w1=$(ms)
  touch "$WORK/go-burst-$tag"
  wait_line "$file" "burst line $((BURST - 1)) "
  c2=$(cpu_ticks "$pid"); w2=$(ms)
  local nt nb
  # shellcheck disable=SC2086
  nt=$(cat $files | grep -c "trickle line " || true)
  # shellcheck disable=SC2086
  nb=$(cat $files | grep -c "burst line " || true)
  awk -v a=$((c1 - c0)) -v b=$((c2 - c1)) -v wa=$((w1 - w0)) -v wb=$((w2 - w1)) -v ipm="$idle_per_ms" \
    -v t="$TCK" -v nt="$TRICKLE" -v nb="$BURST" -v gt="$nt" -v gb="$nb" 'BEGIN{
      ta = (a - ipm * wa) / t * 1e6 / nt; tb = (b - ipm * wb) / t * 1e6 / nb;
      printf "%.2f %.2f %d %d %.1f %.1f\n", ta, tb, gt, gb, a / t * 1000, b / t * 1000 }'
}

declare -a ROWS
n=0
for entry in $HANGAR_BINS; do
  label=${entry%%=*}; bin=${entry#*=}
  [ -x "$bin" ] || { echo "no build at $bin" >&2; exit 1; }
  n=$((n + 1))
  H="$WORK/hangar-$n"; mkdir -p "$H"
  cat >"$H/hangar.toml" <<EOF
proxy_port = $((17890 + 2 * n))
api_port = $((17891 + 2 * n))
app_ports = "17600-17699"
[main]
enabled = false
[runtimes.py]
command = ["$PY", "$WORK/emit.py", "$WORK", "h$n"]
health = "/_health"
env = { RATE = "$RATE", TRICKLE = "$TRICKLE", BURST = "$BURST" }
EOF
  "$bin" --home "$H" serve >"$WORK/serve-$n.log" 2>&1 &
  pid=$!
  ENGINE=$bin; ENGINE_HOME=$H
  for _ in $(seq 1 200); do [ -f "$H/engine.json" ] && break; sleep 0.05; done
  "$bin" --home "$H" create b --runtime py --port $((17700 + n)) >/dev/null
  "$bin" --home "$H" start b >/dev/null
  wait_port $((17700 + n))
  echo "$label: measuring ..." >&2
  ROWS+=("$label $(measure "$pid" "$H/logs/b.log" "$H/logs/b.log*" "h$n")")
  "$bin" --home "$H" kill >/dev/null 2>&1 || true
  ENGINE=""
  wait "$pid" 2>/dev/null || true
done

# pm2, same app, same lines.
cat >"$WORK/ecosystem.config.js" <<EOF
module.exports = { apps: [{ name: 'b', script: '$WORK/emit.py', interpreter: '$PY',
  args: ['$WORK', 'p'], autorestart: false,
  env: { PORT: '17799', RATE: '$RATE', TRICKLE: '$TRICKLE', BURST: '$BURST' } }] };
EOF
"$PM2" ping >/dev/null 2>&1
"$PM2" start "$WORK/ecosystem.config.js" >/dev/null 2>&1
wait_port 17799
PM2_PID=$(cat "$PM2_HOME/pm2.pid")
PM2_VERSION=$("$PM2" --version 2>/dev/null | tail -1)
echo "pm2: measuring ..." >&2
ROWS+=("pm2-$PM2_VERSION $(measure "$PM2_PID" "$PM2_HOME/logs/b-out.log" "$PM2_HOME/logs/b-out.log" p)")
"$PM2" kill >/dev/null 2>&1 || true

echo
echo "| supervisor | trickle: CPU µs per line ($RATE lines/s, $TRICKLE lines, one write each) | burst: CPU µs per line ($BURST lines) | lines in the file (trickle, burst) | CPU ms (trickle, burst) |"
echo "| --- | ---: | ---: | --- | --- |"
for r in "${ROWS[@]}"; do
  set -- $r
  echo "| $1 | $2 | $3 | $4 / $TRICKLE, $5 / $BURST | $6, $7 |"
done
