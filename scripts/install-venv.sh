#!/usr/bin/env bash
# One program from PyPI in a virtualenv of its own (for the tests' real third-party apps), kept
# across runs; prints the program's path. Installs again only when the pinned version is not
# the one there.
# Usage: scripts/install-venv.sh VENV PACKAGE VERSION PROGRAM
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: scripts/install-venv.sh VENV PACKAGE VERSION PROGRAM" >&2; exit 2; }
venv=$1 package=$2 version=$3 program=$4
if [ -x "$venv/bin/$program" ] && "$venv/bin/$program" --version | awk -v v="$version" '$NF == v { f = 1 } END { exit !f }'; then
    echo "$venv/bin/$program"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "$package==$version"
echo "$venv/bin/$program"
