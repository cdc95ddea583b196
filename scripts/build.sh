#!/usr/bin/env bash
# The one debug build both README commands make (scripts/run.sh and scripts/test.sh): every
# package and target of the workspace, so the dependencies are compiled once, with one set of
# features, into the fixed CARGO_TARGET_DIR of scripts/env.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build --workspace --all-targets
