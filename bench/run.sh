#!/usr/bin/env bash
# Every benchmark of the metrics-and-logs section, in one run (release build).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p hangar
echo "## sampler"; cargo bench -q --bench sampler
echo "## logs"; cargo bench -q --bench logs
echo "## vs pm2"; bench/vs-pm2.sh "${1:-50}"
