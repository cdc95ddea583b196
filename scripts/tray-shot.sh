#!/usr/bin/env bash
# The README's picture of the tray menu: the desktop app (debug build) in a real X server (Xvfb)
# beside a tray that draws (trayer, an XEmbed tray: with no StatusNotifier host the app's
# indicator falls back to a status icon there), three apps made with the CLI, the icon clicked,
# the screen captured and cut to the tray's corner.
#   scripts/tray-shot.sh [OUT]     default OUT: docs/screenshots/tray.png
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
OUT=${1:-docs/screenshots/tray.png}
for c in xvfb-run dbus-run-session trayer xdotool import convert; do
  command -v "$c" >/dev/null || { echo "tray-shot: $c is missing: apt-get install xvfb dbus-daemon trayer xdotool imagemagick" >&2; exit 1; }
done
DESKTOP=$CARGO_TARGET_DIR/debug/hangar-desktop
HANGAR=$CARGO_TARGET_DIR/debug/hangar
[ -x "$DESKTOP" ] && [ -x "$HANGAR" ] || { echo "tray-shot: build first: cargo build --workspace" >&2; exit 1; }
WORK=$(mktemp -d /tmp/hangar-tray.XXXXXX)
trap 'HANGAR_HOME=$WORK/home "$HANGAR" --home "$WORK/home" kill >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/home"
printf 'proxy_port = 19790\napi_port = 19791\n' > "$WORK/home/hangar.toml"
cat > "$WORK/inside.sh" <<INNER
#!/usr/bin/env bash
set -euo pipefail
trayer --edge top --align right --widthtype request --height 32 --transparent false --tint 0x333333 &
sleep 2
"$DESKTOP" --home "$WORK/home" > "$WORK/desktop.log" 2>&1 &
for _ in \$(seq 1 300); do [ -f "$WORK/home/engine.json" ] && break; sleep 0.1; done
"$HANGAR" --home "$WORK/home" create shop --display-name "Shop" >/dev/null
"$HANGAR" --home "$WORK/home" create crm --display-name "CRM" >/dev/null
"$HANGAR" --home "$WORK/home" create wiki --display-name "Team wiki" >/dev/null
"$HANGAR" --home "$WORK/home" start shop >/dev/null
"$HANGAR" --home "$WORK/home" start wiki >/dev/null
sleep 4
# The icon is the tray's only one, in the screen's top right corner.
xdotool mousemove 1263 16 click 1
sleep 2
import -window root "$WORK/screen.png"
"$HANGAR" --home "$WORK/home" kill >/dev/null 2>&1 || true
INNER
chmod +x "$WORK/inside.sh"
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- "$WORK/inside.sh"
mkdir -p "$(dirname "$OUT")"
convert "$WORK/screen.png" -crop 330x285+950+0 +repage "$OUT"
echo "tray-shot: $OUT" >&2
