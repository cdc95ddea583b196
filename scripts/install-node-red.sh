#!/usr/bin/env bash
# Installs Node-RED (from the npm registry) into a cache outside the clone, for the `node-red`
# preset's test and the README's steps. Prints the `node-red` program's path; put its folder on
# the runtime's PATH (env = { PATH = "<that folder>:${PATH}" }).
# Usage: scripts/install-node-red.sh   (HANGAR_NODE_RED_CACHE moves the cache)
# Idempotent: when the pinned version is there it only prints the path (instant when warm).
set -euo pipefail
version="4.1.8" # Node 18.5 or later; the 5.x line needs Node 22.9
root="${HANGAR_NODE_RED_CACHE:-$HOME/.cache/hangar/node-red/$version}"
bin="$root/node_modules/.bin/node-red"
marker="$root/.hangar-installed"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$version" ] && [ -x "$bin" ]; then
    echo "$bin"
    exit 0
fi
say() { printf 'install-node-red: %s\n' "$*" >&2; }
command -v npm >/dev/null || { say "npm is needed (scripts/install-deps.sh installs Node)"; exit 1; }
mkdir -p "$root"
say "node-red@$version with $(node --version) (about a minute cold)"
# The registry npm is set up with on this machine.
npm install --prefix "$root" --no-save --no-package-lock --no-audit --no-fund \
    --loglevel=error "node-red@$version" >&2
installed="$(node -p 'require(process.argv[1]).version' "$root/node_modules/node-red/package.json")"
if [ "$installed" != "$version" ]; then
    say "expected node-red $version, found $installed"
    exit 1
fi
echo "$version" >"$marker"
echo "$bin"
