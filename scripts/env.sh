# Sourced by the scripts: one fixed build folder outside the clone, so every run after the
# first is incremental, whichever clone it runs from.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hangar/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
HANGAR_BIN="$CARGO_TARGET_DIR/debug/hangar"
HANGAR_DEMO_BIN="$CARGO_TARGET_DIR/debug/hangar-demo"
export HANGAR_DEMO_BIN
