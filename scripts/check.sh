#!/usr/bin/env bash
# The fast check tier, run first by scripts/test.sh (and so by CI) before the long suites, and by
# hand before a commit: formatting, clippy with warnings as errors (the lints are
# [workspace.lints] in Cargo.toml), and the control panel's types (svelte-check, which runs the
# TypeScript compiler over the .svelte and .ts files). A minute or two when the build is warm.
#   scripts/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
step() { printf '\n== check: %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "the control panel: svelte-check (TypeScript over .svelte and .ts)"
if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  (cd ui && npm ci --no-audit --no-fund)
fi
(cd ui && npx svelte-check --tsconfig ./tsconfig.json --fail-on-warnings --threshold warning)
step "passed"
