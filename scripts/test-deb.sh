#!/usr/bin/env bash
# Check the two .debs: build them (scripts/package-deb.sh: cargo-deb, release, offline), then
# their contents (`dpkg-deb -c`), their control fields (Depends from the real libraries, the
# desktop's on the engine's at the same version), lintian (no error), the .desktop entry
# (`desktop-file-validate`), and that the packaged binaries run. With INSTALL=1 it also installs the package (dpkg -i, needs root), runs
# the desktop end-to-end test against /usr/bin/hangar-desktop, and removes the package again.
#   scripts/test-deb.sh [path/to/hangar_X_arch.deb path/to/hangar-desktop_X_arch.deb]
set -euo pipefail
die() { echo "test-deb: FAILED: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v desktop-file-validate >/dev/null || die "desktop-file-validate is missing (apt-get install desktop-file-utils)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing"

if [ $# -ge 2 ]; then DEB=$1; DESK=$2; else
  mapfile -t debs < <("$ROOT/scripts/package-deb.sh")
  DEB=${debs[0]:-}; DESK=${debs[1]:-}
fi
[ -f "$DEB" ] || die "no engine package at $DEB"
[ -f "$DESK" ] || die "no desktop package at $DESK"
echo "test-deb: checking $DEB ($(du -h "$DEB" | cut -f1)) and $DESK ($(du -h "$DESK" | cut -f1))"

has() { # has DEB FILE…: each FILE is in the package
  local list; list=$(dpkg-deb -c "$1"); shift
  for f in "$@"; do
    grep -q " $f\$" <<<"$list" || die "$f is not in the package; it has:
$list"
  done
}
has "$DEB" ./usr/bin/hangar ./usr/bin/hangar-demo ./usr/share/hangar/ui/index.html \
  ./usr/share/man/man1/hangar.1.gz ./usr/share/bash-completion/completions/hangar \
  ./usr/share/doc/hangar/copyright ./usr/share/doc/hangar/changelog.Debian.gz
has "$DESK" ./usr/bin/hangar-desktop ./usr/share/applications/hangar.desktop \
  ./usr/share/icons/hicolor/32x32/apps/hangar.png ./usr/share/icons/hicolor/64x64/apps/hangar.png \
  ./usr/share/icons/hicolor/128x128/apps/hangar.png ./usr/share/icons/hicolor/256x256/apps/hangar.png \
  ./usr/share/icons/hicolor/512x512/apps/hangar.png ./usr/share/doc/hangar-desktop/copyright
dpkg-deb -c "$DESK" | grep -q ' ./usr/bin/hangar$' && die "the desktop package carries /usr/bin/hangar (the engine package's)"
dpkg-deb -c "$DESK" | grep -E '^-rwxr-xr-x (root/root|0/0) .* ./usr/bin/hangar-desktop$' >/dev/null \
  || die "hangar-desktop is not an executable owned by root"

field() { dpkg-deb -f "$1" "$2"; }
VERSION=$(field "$DEB" Version)
# Depends come from the binaries' real libraries: libc at least; never a library nothing links.
field "$DEB" Depends | grep -q 'libc6' || die "the engine package's Depends has no libc6: $(field "$DEB" Depends)"
for f in "$DEB" "$DESK"; do
  field "$f" Depends | grep -q 'libssl' && die "$(basename "$f") depends on libssl, which no binary links"
done
field "$DEB" Depends | grep -q 'webkit' && die "the engine package depends on WebKit: $(field "$DEB" Depends)"
field "$DEB" Recommends | grep -q 'postgresql-client' || die "the engine package does not recommend postgresql-client"
field "$DEB" Recommends | grep -q 'mariadb-client' || die "the engine package does not recommend mariadb-client"
field "$DESK" Depends | grep -q 'libwebkit2gtk-4.1-0' || die "the desktop package's Depends has no WebKitGTK: $(field "$DESK" Depends)"
field "$DESK" Depends | grep -q 'libayatana-appindicator3-1' || die "the desktop package does not depend on the tray's indicator library"
field "$DESK" Depends | grep -qF "hangar (= $VERSION)" \
  || die "the desktop package must depend on hangar (= $VERSION) (src-tauri/Cargo.toml's depends line); it says: $(field "$DESK" Depends)"
for f in "$DEB" "$DESK"; do
  for k in Maintainer Homepage Description; do
    [ -n "$(field "$f" "$k")" ] || die "$(basename "$f") has no $k field"
  done
done

# lintian, Debian's package checker: no error (warnings are printed for the reader).
command -v lintian >/dev/null || die "lintian is missing (apt-get install lintian)"
for f in "$DEB" "$DESK"; do
  out=$(lintian --tag-display-limit 0 "$f" 2>&1 || true)
  [ -n "$out" ] && printf '%s\n' "$out"
  if grep -q '^E: ' <<<"$out"; then die "lintian reports errors in $(basename "$f")"; fi
done
echo "test-deb: lintian reports no error"

X=$(mktemp -d /tmp/hangar-deb-x.XXXXXX)
trap 'rm -rf "$X"' EXIT
dpkg-deb -x "$DEB" "$X"
dpkg-deb -x "$DESK" "$X"
desktop-file-validate "$X/usr/share/applications/hangar.desktop" || die "the .desktop entry is invalid"
EXEC=$(sed -n 's/^Exec=\([^ ]*\).*/\1/p' "$X/usr/share/applications/hangar.desktop")
[ -x "$X/usr/bin/$EXEC" ] || die "the .desktop entry runs $EXEC, which the package does not install in /usr/bin"
ICON=$(sed -n 's/^Icon=//p' "$X/usr/share/applications/hangar.desktop")
[ -f "$X/usr/share/icons/hicolor/256x256/apps/$ICON.png" ] || die "the .desktop icon $ICON has no hicolor PNG"
"$X/usr/bin/hangar-desktop" --version | grep -q '^hangar-desktop ' || die "the packaged hangar-desktop does not run"
"$X/usr/bin/hangar-demo" --version | grep -q '^hangar-demo ' || die "the packaged hangar-demo does not run"
"$X/usr/bin/hangar" --help >/dev/null || die "the packaged hangar does not run"
echo "test-deb: contents, control fields, .desktop entry and binaries are fine"

if [ -n "${INSTALL:-}" ]; then
  [ "$(id -u)" = 0 ] || die "INSTALL=1 needs root (dpkg -i)"
  dpkg -i "$DEB" "$DESK"
  STATUS=0
  SKIP_BUILD=1 HANGAR_DESKTOP_BIN=/usr/bin/hangar-desktop HANGAR_BIN=/usr/bin/hangar \
    E2E_DESKTOP_ENTRY=/usr/share/applications/hangar.desktop \
    "$ROOT/scripts/desktop-e2e.sh" || STATUS=$?
  dpkg -r hangar-desktop hangar
  [ $STATUS = 0 ] || die "the end-to-end test failed against the installed package"
  echo "test-deb: the installed package passed the end-to-end test"
fi
