#!/usr/bin/env bash
# The memory budget in action (BENCHMARKS.md, "Memory budget in action"): on-visit demo apps
# that each hold memory, visited in turn under a budget that fits only some of them.
# APPS, FIT, HOLD_MB, VISITS, SEED tune it (see bench/memory_budget.py).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --workspace -q
exec python3 bench/memory_budget.py "$target/debug/hangar" "$target/debug/hangar-demo"
