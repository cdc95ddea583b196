#!/usr/bin/env bash
# cargo-deb, the maintained tool that builds Hangar's .deb packages, from crates.io (once; a
# minute or two), into ~/.cargo/bin. Fails loudly when it cannot be had.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
if cargo deb --version >/dev/null 2>&1; then exit 0; fi
echo "install-cargo-deb: installing cargo-deb from crates.io" >&2
cargo install cargo-deb --locked --version '^3' >&2
cargo deb --version >/dev/null
