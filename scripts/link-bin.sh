#!/usr/bin/env bash
# Put the built `hangar` on PATH for the README's tour: a link in ~/.local/bin (Debian's
# ~/.profile puts that folder on PATH when it exists; a new login shell, or
# `export PATH="$HOME/.local/bin:$PATH"`, picks it up). A `hangar` there that is not a link
# made here (an installed copy, say) is left alone and said so.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
bin_dir="$HOME/.local/bin"
mkdir -p "$bin_dir"
for b in hangar hangar-demo; do
  src="$CARGO_TARGET_DIR/debug/$b"
  dst="$bin_dir/$b"
  [ -x "$src" ] || continue
  if [ -e "$dst" ] && [ ! -L "$dst" ]; then
    echo "link-bin: $dst exists and is not a link; left as it is (the build is $src)" >&2
    continue
  fi
  ln -sfn "$src" "$dst"
done
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) echo "link-bin: hangar is linked in $bin_dir, which is not on this shell's PATH: run  export PATH=\"$bin_dir:\$PATH\"  (a new login shell does it for you)" >&2 ;;
esac
