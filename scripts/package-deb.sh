#!/usr/bin/env bash
# Build the two Debian packages with cargo-deb (release build, offline):
#   hangar          the engine and CLI (`hangar`), `hangar-demo`, the control panel (ui/dist),
#                   completions and man pages: what a server without a desktop installs;
#   hangar-desktop  the window and tray (`hangar-desktop`), its .desktop entry and icons;
#                   it depends on `hangar` at the same version.
# Depends are read from the binaries' libraries by cargo-deb ($auto, dpkg-shlibdeps); the rest of
# each package's fields are in [package.metadata.deb] of Cargo.toml and src-tauri/Cargo.toml.
# DEB_MAINTAINER="Name <mail>" sets the Maintainer field of both. Prints the two .debs' paths.
#   scripts/package-deb.sh [OUT_DIR]      (default: dist/)
set -euo pipefail
die() { echo "package-deb: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/env.sh"
TARGET=$CARGO_TARGET_DIR
OUT=${1:-$ROOT/dist}
command -v dpkg-shlibdeps >/dev/null || die "dpkg-shlibdeps is missing (apt-get install dpkg-dev)"
"$ROOT/scripts/install-cargo-deb.sh" >&2
[ -f "$ROOT/ui/dist/index.html" ] || die "the control panel is not built (ui/dist): cd ui && npm ci && npm run build"

if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$ROOT" && cargo build --release --offline -p hangar -p hangar-demo -p hangar-desktop) >&2
fi
for b in hangar hangar-demo hangar-desktop; do
  [ -x "$TARGET/release/$b" ] || die "$TARGET/release/$b is missing: cargo build --release -p $b"
done

# Completions and man pages, made by the packaged `hangar` from its own clap declaration.
SHARE=$TARGET/release/deb-share
rm -rf "$SHARE"
install -d "$SHARE/bash-completion/completions" "$SHARE/zsh/vendor-completions" \
  "$SHARE/fish/vendor_completions.d" "$SHARE/man/man1"
"$TARGET/release/hangar" completions bash > "$SHARE/bash-completion/completions/hangar"
"$TARGET/release/hangar" completions zsh > "$SHARE/zsh/vendor-completions/_hangar"
"$TARGET/release/hangar" completions fish > "$SHARE/fish/vendor_completions.d/hangar.fish"
"$TARGET/release/hangar" man --dir "$SHARE/man/man1" >/dev/null
gzip -9n "$SHARE"/man/man1/*.1

mkdir -p "$OUT"
maint=()
[ -n "${DEB_MAINTAINER:-}" ] && maint=(--maintainer "$DEB_MAINTAINER")
for p in hangar hangar-desktop; do
  (cd "$ROOT" && cargo deb --offline --no-build -p "$p" "${maint[@]}" --output "$OUT") >&2
done
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
ARCH=$(dpkg --print-architecture)
for p in hangar hangar-desktop; do
  f="$OUT/${p}_${VERSION}-1_${ARCH}.deb"
  [ -f "$f" ] || die "cargo-deb made no $f"
  echo "$f"
done
