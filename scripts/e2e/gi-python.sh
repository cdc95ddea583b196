#!/usr/bin/env bash
# Print the path of a python3 that has python3-gi (Debian's, for the system python: the tray's
# D-Bus side is read with it); fail, saying how to get one, when there is none.
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import gi; from gi.repository import Gio' 2>/dev/null; then
    command -v "$py"
    exit 0
  fi
done
echo "python3-gi is missing (the tray is driven over D-Bus with it): apt-get install python3-gi" >&2
exit 1
