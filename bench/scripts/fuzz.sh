#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of what the edge and the
# origin read from the wire: token parsing and verification (fuzz/fuzz_targets/
# token.rs) and the /buy body (buy_body.rs). Not run in CI. Prints the
# executions per target; a finding is written to fuzz/artifacts/ and fails the
# script. Installs cargo-fuzz if missing; runs on the stable toolchain
# (RUSTC_BOOTSTRAP lets it use the sanitizer flags).
# Usage: bench/scripts/fuzz.sh [seconds per target, default 60]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
export RUSTC_BOOTSTRAP=1
# The workspace's target directory would mix instrumented and plain builds.
export CARGO_TARGET_DIR="$PWD/fuzz/target"
for target in token buy_body; do
  echo "== $target, $secs s"
  cargo fuzz run "$target" -- -max_total_time="$secs" -print_final_stats=1 2>&1 |
    grep -E "stat::number_of_executed_units|stat::peak_rss|ERROR|panicked|Test unit written" || true
  [ -z "$(ls fuzz/artifacts/"$target" 2>/dev/null)" ] || { echo "finding in fuzz/artifacts/$target"; exit 1; }
done
