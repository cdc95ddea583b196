#!/usr/bin/env bash
# Installs Datasette (from PyPI, into its own virtualenv) for the proxy test that runs a real
# third-party web app under /_app/<name>/ through a runtime written only in hangar.toml.
# Usage: scripts/install-datasette.sh   (prints the datasette path; HANGAR_DATASETTE_VENV moves
# the virtualenv, HANGAR_TEST_DATASETTE may point the test at another one)
set -euo pipefail
exec "$(dirname "$0")/install-venv.sh" "${HANGAR_DATASETTE_VENV:-$HOME/.cache/hangar/venv-datasette}" \
    datasette 0.65.5 datasette
