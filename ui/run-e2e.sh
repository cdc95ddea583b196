#!/usr/bin/env bash
# Build the Rust workspace and the UI, then run the UI's end-to-end suite against a real
# `hangar serve` in Debian's Chromium. Fails loudly when a part is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
chromium="${HANGAR_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "run-e2e: Chromium is missing at $chromium; install it with: apt-get install -y chromium" >&2
  exit 1
fi
command -v node >/dev/null || { echo "run-e2e: node is missing (node 20 or newer is needed)" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-$repo/target}"
# The one build of scripts/build.sh (the same features as scripts/test.sh and scripts/run.sh).
"$repo/scripts/build.sh"
# The target folder may be shared: run private copies of the binaries just built.
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
cp "$target/debug/hangar" "$target/debug/hangar-demo" "$bin/"
cd "$here"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
npx vitest run
HANGAR_BIN="$bin/hangar" HANGAR_DEMO_BIN="$bin/hangar-demo" HANGAR_TEST_OUTPUT="$repo/test-output" \
  node --test --test-concurrency=1 --test-reporter=spec e2e/ui.e2e.mjs e2e/table.e2e.mjs e2e/budget.e2e.mjs e2e/layout.e2e.mjs
echo "screenshots: $repo/test-output/ui-*.png"
if [ -n "${HANGAR_DOCS_SHOTS:-}" ]; then echo "documentation pictures: $HANGAR_DOCS_SHOTS"; fi
