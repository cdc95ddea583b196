#!/usr/bin/env bash
# The proxy benchmark: in one run, on one backend (a release `hangar-demo` that Hangar
# supervises), direct vs nginx (keep-alive upstream) vs Hangar's proxy.
#
# Reports req/s, proxy CPU µs per request (from /proc/<pid>/stat), p50/p99 latency at 1 and 64
# connections (wrk --latency), 10 MiB streaming throughput, and the added delay of a first
# visit over the app's own boot. Prints a Markdown table for BENCHMARKS.md.
#
# Usage: bench/proxy.sh            (DURATION=10 seconds per wrk run; CARGO_TARGET_DIR honoured)
# Needs: wrk and nginx (installed from Debian with apt-get when absent), python3, cargo.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

for tool in wrk nginx; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
        echo "installing $tool from Debian" >&2
        apt-get install -y -q "$tool" >/dev/null
    fi
done

echo "building hangar and hangar-demo in release" >&2
(cd "$root" && cargo build --release --workspace -q)

exec python3 "$root/bench/proxy_bench.py" "$target/release/hangar" "$target/release/hangar-demo"
