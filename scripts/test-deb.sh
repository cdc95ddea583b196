#!/usr/bin/env bash
# Check the .deb: build it (scripts/package-deb.sh, release, offline), then its contents
# (`dpkg-deb -c`), its control fields, its .desktop entry (`desktop-file-validate`), and that the
# packaged binaries run. With INSTALL=1 it also installs the package (dpkg -i, needs root), runs
# the desktop end-to-end test against /usr/bin/hangar-desktop, and removes the package again.
#   scripts/test-deb.sh [path/to/hangar_X_arch.deb]
set -euo pipefail
die() { echo "test-deb: FAILED: $*" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v desktop-file-validate >/dev/null || die "desktop-file-validate is missing (apt-get install desktop-file-utils)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing"

DEB=${1:-}
if [ -z "$DEB" ]; then DEB=$("$ROOT/scripts/package-deb.sh" | tail -1); fi
[ -f "$DEB" ] || die "no package at $DEB"
echo "test-deb: checking $DEB ($(du -h "$DEB" | cut -f1))"

LIST=$(dpkg-deb -c "$DEB")
for f in ./usr/bin/hangar-desktop ./usr/bin/hangar ./usr/bin/hangar-demo \
         ./usr/share/applications/hangar.desktop \
         ./usr/share/icons/hicolor/32x32/apps/hangar.png ./usr/share/icons/hicolor/64x64/apps/hangar.png \
         ./usr/share/icons/hicolor/128x128/apps/hangar.png ./usr/share/icons/hicolor/256x256/apps/hangar.png \
         ./usr/share/icons/hicolor/512x512/apps/hangar.png; do
  grep -q " $f\$" <<<"$LIST" || die "$f is not in the package; it has:
$LIST"
done
if [ -d "$ROOT/ui/dist" ]; then
  grep -q " ./usr/share/hangar/ui/index.html\$" <<<"$LIST" || die "ui/dist exists but /usr/share/hangar/ui/index.html is not packaged"
fi
grep -E '^-rwxr-xr-x root/root .* ./usr/bin/hangar-desktop$' <<<"$LIST" >/dev/null \
  || die "hangar-desktop is not an executable owned by root"

INFO=$(dpkg-deb -I "$DEB")
for field in "Package: hangar" "Depends: .*libwebkit2gtk-4.1-0" "Depends: .*libayatana-appindicator3-1"; do
  grep -Eq "^ $field" <<<"$INFO" || die "control field missing: $field"
done

X=$(mktemp -d /tmp/hangar-deb-x.XXXXXX)
trap 'rm -rf "$X"' EXIT
dpkg-deb -x "$DEB" "$X"
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
  dpkg -i "$DEB"
  STATUS=0
  SKIP_BUILD=1 HANGAR_DESKTOP_BIN=/usr/bin/hangar-desktop HANGAR_BIN=/usr/bin/hangar \
    E2E_DESKTOP_ENTRY=/usr/share/applications/hangar.desktop \
    "$ROOT/scripts/desktop-e2e.sh" || STATUS=$?
  dpkg -r hangar
  [ $STATUS = 0 ] || die "the end-to-end test failed against the installed package"
  echo "test-deb: the installed package passed the end-to-end test"
fi
