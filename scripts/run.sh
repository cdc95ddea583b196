#!/usr/bin/env bash
# Install what is needed, build, and run Hangar on its embedded defaults: the main demo app
# on http://127.0.0.1:13000/ and the API on 127.0.0.1:13001.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh run
. scripts/env.sh
cargo build --workspace --bins
# The control panel, served by the engine on the API port.
(cd ui && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run --silent build)
echo "Starting Hangar (Ctrl-C stops it and every app)…" >&2
exec "$HANGAR_BIN" serve "$@"
