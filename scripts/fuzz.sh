#!/usr/bin/env bash
# Fuzz Hangar's input handling with cargo-fuzz (libFuzzer): hangar.toml parsing (`config`), the
# validation rules and URL helpers (`validate`), the API's JSON bodies (`api_json`) and the
# proxy's two request-head rewrites (`proxy_head`: the fast path and the general path agree).
#
#   scripts/fuzz.sh [SECONDS]     each target runs SECONDS (default 30), one after another
#
# Needs the nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz if it is
# missing. Builds under ~/.cache/hangar/fuzz-target (incremental across runs) and grows a working
# corpus under ~/.cache/hangar/fuzz-corpus, seeded from fuzz/corpus/<target>/ (committed).
# Exits non-zero if any target finds a crash, a panic or a hang, and prints the input's path.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

secs="${1:-30}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: SECONDS must be a positive whole number, not '$secs'" >&2
  exit 2
fi

cache="$HOME/.cache/hangar"
target_dir="$cache/fuzz-target"
work="$cache/fuzz-corpus"
# HANGAR_FUZZ_TARGETS picks others.
read -r -a targets <<<"${HANGAR_FUZZ_TARGETS:-config validate api_json proxy_head}"
# cargo-fuzz's default build: optimised, with debug assertions and overflow checks. No sanitizer:
# the code under test is safe Rust, so panics and overflow checks are what find bugs here, and
# ASan would slow every build and run down.
flags=(--sanitizer none --target-dir "$target_dir")

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: the nightly Rust toolchain is missing (cargo-fuzz needs it);" >&2
  echo "         install it with: rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked
fi

echo "== building the fuzz targets (${targets[*]})" >&2
cargo +nightly fuzz build "${flags[@]}"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "fuzz/artifacts/$t"
  log="$work/$t.log"
  echo "== fuzzing $t for ${secs}s" >&2
  # -timeout: an input that takes 10 s is a hang, reported like a crash.
  if cargo +nightly fuzz run "${flags[@]}" "$t" "$work/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$root/fuzz/artifacts/$t/" >"$log" 2>&1; then
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
    echo "   $t: ${runs:-?} inputs, no crash" >&2
  else
    failed+=("$t")
    echo "!! $t FAILED; the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
    input="$(grep -o 'Test unit written to .*' "$log" | sed 's/^Test unit written to //' | tail -n 1 || true)"
    if [ -n "$input" ]; then
      echo "!! $t: the failing input is $input" >&2
      echo "!! replay it: cargo +nightly fuzz run ${flags[*]} $t $input" >&2
    fi
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: every target ran ${secs}s without a crash" >&2
