#!/usr/bin/env bash
# Installs Jupyter Server (from PyPI, into its own virtualenv) for the compatibility suite
# (tests/compat.rs): a real program that keeps its settings and runtime files under HOME, run
# confined with no extra key.
# Usage: scripts/install-jupyter.sh   (prints the jupyter-server path; HANGAR_JUPYTER_VENV moves
# the virtualenv, HANGAR_TEST_JUPYTER may point the test at another one)
set -euo pipefail
venv="${HANGAR_JUPYTER_VENV:-$HOME/.cache/hangar/venv-jupyter-server}"
version="2.21.1"
if [ -x "$venv/bin/jupyter-server" ] && "$venv/bin/jupyter-server" --version | grep -qx "$version"; then
    echo "$venv/bin/jupyter-server"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "jupyter_server==$version"
echo "$venv/bin/jupyter-server"
