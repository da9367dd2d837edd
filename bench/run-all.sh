#!/usr/bin/env bash
# Reproduces every figure of docs/BENCHMARKS.md on this machine, each against its
# baseline in the same run, and prints the table at the end. Each part starts and
# stops its own servers. Takes about 15 minutes.
# Usage: bench/run-all.sh [seconds per measurement, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() { echo "### $*"; "$@" 2>&1 | tee -a "$log"; }
run bench/scripts/origin.sh "$secs"
run bench/scripts/overload.sh "$secs"
run bench/scripts/edge.sh "$secs"
source scripts/services.sh
ensure_services
DATABASE_URL="$RUSHGATE_PG_BASE/postgres" run cargo bench --locked -q -p rushgate-origin --bench order_worker -- 100000
run bench/scripts/shielding.sh 10000 10
run bench/scripts/cluster.sh "$secs"
run bench/scripts/logins.sh 500
echo
echo "=== summary"
grep -E "^(P[1-4] |C[1-2] |L1 |offered|capacity|shedding|no shedding|Wasm|cold start|buyers per second|dedup Durable|units sold|invariants|\{\"buckets)" "$log"
