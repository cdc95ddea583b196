#!/usr/bin/env bash
# Build the .deb: `hangar-desktop` (release), `hangar` and `hangar-demo`, a .desktop entry (the
# app menu, a double-click), hicolor icons, and the control panel (ui/dist, when built) under
# /usr/share/hangar/ui. Offline: cargo uses what is already fetched. Prints the .deb's path.
#   scripts/package-deb.sh [OUT_DIR]      (default: dist/)
set -euo pipefail
die() { echo "package-deb: $*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (apt-get install dpkg)"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${1:-$ROOT/dist}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
ARCH=$(dpkg --print-architecture)
[ -n "$VERSION" ] || die "no version in Cargo.toml"

if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$ROOT" && cargo build --release --offline -p hangar -p hangar-demo -p hangar-desktop) >&2
fi
for b in hangar hangar-demo hangar-desktop; do
  [ -x "$TARGET/release/$b" ] || die "$TARGET/release/$b is missing: cargo build --release -p $b"
done

STAGE=$(mktemp -d /tmp/hangar-deb.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/hangar_${VERSION}_${ARCH}
install -d "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/usr/share/applications" \
  "$PKG/usr/share/doc/hangar" "$PKG/usr/share/hangar"
for b in hangar hangar-demo hangar-desktop; do
  install -m 0755 "$TARGET/release/$b" "$PKG/usr/bin/$b"
  strip --strip-unneeded "$PKG/usr/bin/$b" 2>/dev/null || true
done
install -m 0644 "$ROOT/packaging/hangar.desktop" "$PKG/usr/share/applications/hangar.desktop"
# Shell completions and man pages, made by the packaged `hangar` from its own clap declaration.
install -d "$PKG/usr/share/bash-completion/completions" "$PKG/usr/share/zsh/vendor-completions" \
  "$PKG/usr/share/fish/vendor_completions.d" "$PKG/usr/share/man/man1"
HANGAR_BIN=$TARGET/release/hangar
"$HANGAR_BIN" completions bash > "$PKG/usr/share/bash-completion/completions/hangar"
"$HANGAR_BIN" completions zsh > "$PKG/usr/share/zsh/vendor-completions/_hangar"
"$HANGAR_BIN" completions fish > "$PKG/usr/share/fish/vendor_completions.d/hangar.fish"
"$HANGAR_BIN" man --dir "$PKG/usr/share/man/man1" 2>/dev/null
gzip -9n "$PKG"/usr/share/man/man1/*.1
chmod 0644 "$PKG"/usr/share/bash-completion/completions/hangar "$PKG"/usr/share/zsh/vendor-completions/_hangar \
  "$PKG"/usr/share/fish/vendor_completions.d/hangar.fish "$PKG"/usr/share/man/man1/*.1.gz
for s in 32 64 128 256 512; do
  install -d "$PKG/usr/share/icons/hicolor/${s}x${s}/apps"
  install -m 0644 "$ROOT/icons/${s}x${s}.png" "$PKG/usr/share/icons/hicolor/${s}x${s}/apps/hangar.png"
done
if [ -d "$ROOT/ui/dist" ]; then
  cp -r "$ROOT/ui/dist" "$PKG/usr/share/hangar/ui"
  find "$PKG/usr/share/hangar/ui" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
else
  echo "package-deb: no ui/dist (the control panel is not built): the app uses its built-in pages" >&2
fi
cat > "$PKG/usr/share/doc/hangar/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hangar
License: MIT or Apache-2.0
COPY
SIZE=$(du -sk "$PKG/usr" | cut -f1)
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: hangar
Version: $VERSION
Architecture: $ARCH
Maintainer: Hangar developers <hangar@localhost>
Installed-Size: $SIZE
Depends: libwebkit2gtk-4.1-0, libgtk-3-0, libayatana-appindicator3-1, libc6, libssl3 | libssl3t64
Recommends: dbus-user-session
Section: devel
Priority: optional
Homepage: https://localhost/hangar
Description: run a main web app and its sub-apps behind one proxy
 Hangar supervises a main web app and any number of sub-apps, each its own
 process, port, database and logs, behind one reverse proxy. This package has
 the desktop app (window and tray icon), the hangar command line and
 hangar-demo, the bundled demo runtime.
CONTROL
cat > "$PKG/DEBIAN/postinst" <<'POST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
  command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
fi
POST
chmod 0755 "$PKG/DEBIAN/postinst"
mkdir -p "$OUT"
dpkg-deb --root-owner-group --build "$PKG" "$OUT/hangar_${VERSION}_${ARCH}.deb" >&2
echo "$OUT/hangar_${VERSION}_${ARCH}.deb"
