#!/usr/bin/env bash
# Install what is needed and run every test: unit and integration tests against real
# processes, a real PostgreSQL and MariaDB on loopback, and the UI and desktop suites.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh run test desktop
. scripts/env.sh

step() { printf '\n== %s\n' "$*" >&2; }

step "fast checks first: formatting, clippy, the panel's types (scripts/check.sh)"
scripts/check.sh

step "build (the same build scripts/run.sh makes)"
scripts/build.sh
scripts/link-bin.sh

step "a real third-party app for the proxy test (Datasette, from PyPI)"
scripts/install-datasette.sh >/dev/null

step "Jupyter Server for the compatibility suite (PyPI, cached in ~/.cache/hangar/venv-jupyter-server)"
HANGAR_TEST_JUPYTER="$(scripts/install-jupyter.sh)"
export HANGAR_TEST_JUPYTER

step "Node-RED for its preset's test (from npm, cached in ~/.cache/hangar/node-red; a minute cold, instant warm)"
HANGAR_TEST_NODE_RED="$(scripts/install-node-red.sh)"
export HANGAR_TEST_NODE_RED

step "a real NocoBase for the preset test (from npm, cached in ~/.cache/hangar/nocobase; minutes cold, instant warm)"
HANGAR_TEST_NOCOBASE="$(scripts/install-nocobase.sh)"
export HANGAR_TEST_NOCOBASE

step "database servers for the tests"
eval "$(scripts/test-db.sh start)"
trap 'scripts/test-db.sh stop >/dev/null 2>&1 || true' EXIT

step "cargo test"
cargo test --workspace -- --test-threads="${HANGAR_TEST_THREADS:-4}"

step "fuzzing: each cargo-fuzz target for a bounded time (scripts/fuzz.sh, nightly toolchain)"
scripts/fuzz.sh "${HANGAR_FUZZ_SECONDS:-30}"

step "control panel: unit tests and end-to-end in Chromium"
ui/run-e2e.sh

step "desktop app: end-to-end in a real window (Xvfb, tauri-driver, WebKitWebDriver)"
command -v tauri-driver >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/tauri-driver" ] \
  || cargo install tauri-driver --locked
SKIP_BUILD=1 scripts/desktop-e2e.sh

step "desktop package: the .deb (release build), its checks, and the app installed from it"
# As a new user: install the package, start Hangar from its menu entry, use it, quit, remove it.
INSTALL=1 scripts/test-deb.sh

step "all tests passed"
