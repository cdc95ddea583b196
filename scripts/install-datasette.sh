#!/usr/bin/env bash
# Installs Datasette (from PyPI, into its own virtualenv) for the proxy test that runs a real
# third-party web app under /_app/<name>/ through a runtime written only in hangar.toml.
# Usage: scripts/install-datasette.sh   (prints the datasette path; HANGAR_TEST_DATASETTE
# may point the test at another one)
set -euo pipefail
venv="${HANGAR_DATASETTE_VENV:-$HOME/.cache/hangar/venv-datasette}"
version="0.65.5"
if [ -x "$venv/bin/datasette" ] && "$venv/bin/datasette" --version | grep -q "$version"; then
    echo "$venv/bin/datasette"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "datasette==$version"
echo "$venv/bin/datasette"
