#!/usr/bin/env bash
# Install what Hangar needs on Debian 12, by purpose, only what is missing:
#   scripts/install-deps.sh run       build and run the engine
#   scripts/install-deps.sh test      plus the test servers, browser and tools
#   scripts/install-deps.sh desktop   plus what the Tauri desktop app builds and runs with
set -euo pipefail

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(run)

# postgresql-client and mariadb-client: pg_dump/psql and mariadb-dump/mariadb, which backups
# and restores of apps on PostgreSQL and MariaDB/MySQL run. systemd (test): systemd-analyze
# verifies the unit `hangar startup` writes.
pkgs=(build-essential pkg-config ca-certificates curl postgresql-client mariadb-client)
for w in "${want[@]}"; do
  case "$w" in
    run) ;;
    test)
      pkgs+=(postgresql mariadb-server sqlite3 nginx wrk chromium xvfb xauth dbus-daemon imagemagick
             desktop-file-utils procps psmisc systemd dpkg-dev lintian)
      ;;
    desktop)
      pkgs+=(libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev
             libayatana-appindicator3-1 xvfb xauth webkit2gtk-driver dbus-daemon dbus-x11
             xdotool imagemagick desktop-file-utils python3-gi libglib2.0-bin trayer)
      ;;
    *) echo "install-deps: unknown purpose '$w'; accepted: run, test, desktop" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >&2
fi

export PATH="$HOME/.cargo/bin:$PATH"
# The toolchain: the lockfile's crates need Rust 1.95 (Cargo.toml's rust-version says the same).
if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo is missing; install Rust 1.95 or newer with rustup (https://rustup.rs: curl ... | sh, or Debian's rustup package on newer releases) and run again" >&2
  exit 1
fi
rust_have=$(rustc --version | sed -n 's/^rustc \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
read -r rmaj rmin <<<"$rust_have"
if [ -z "$rmaj" ] || [ "$rmaj" -lt 1 ] || { [ "$rmaj" -eq 1 ] && [ "$rmin" -lt 95 ]; }; then
  echo "install-deps: Rust 1.95 or newer is needed (found $(rustc --version)): rustup update stable" >&2
  exit 1
fi
# Node.js 20 or newer for the control panel (Debian 12's own nodejs is 18: take NodeSource's
# nodejs 20 package, or nvm).
if ! command -v node >/dev/null 2>&1; then
  echo "install-deps: Node.js 20 or newer and npm are needed for the control panel (Debian 12 ships 18: install NodeSource's nodejs 20 package or use nvm) and run again" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "install-deps: Node.js 20 or newer is needed (found $(node --version); Debian 12 ships 18: install NodeSource's nodejs 20 package or use nvm)" >&2
  exit 1
fi
