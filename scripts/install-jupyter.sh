#!/usr/bin/env bash
# Installs Jupyter Server (from PyPI, into its own virtualenv) for the compatibility suite
# (tests/it/compat.rs): a real program that keeps its settings and runtime files under HOME, run
# confined with no extra key.
# Usage: scripts/install-jupyter.sh   (prints the jupyter-server path; HANGAR_JUPYTER_VENV moves
# the virtualenv, HANGAR_TEST_JUPYTER may point the test at another one)
set -euo pipefail
exec "$(dirname "$0")/install-venv.sh" "${HANGAR_JUPYTER_VENV:-$HOME/.cache/hangar/venv-jupyter-server}" \
    jupyter_server 2.21.1 jupyter-server
