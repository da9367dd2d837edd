#!/usr/bin/env bash
# Where the Rust edge spends its CPU on a path: builds the worker with function
# names kept, starts a stack whose workerd listens for the DevTools protocol,
# drives the path with wrk and prints the functions with the most self time
# (bench/scripts/cpu-profile.mjs), in the worker and in the assets router.
# Rebuild without names afterwards (scripts/build-edge.sh) before measuring.
# Usage: bench/scripts/edge-profile.sh [reject|sold] [seconds, default 10] [rust|js]
path="${1:-reject}"
secs="${2:-10}"
worker="${3:-rust}"
source "$(dirname "$0")/lib.sh"
RUSHGATE_EDGE_NAMES=1 scripts/build-edge.sh | tail -n1
inspector="127.0.0.1:$(free_port)"
script=()
[ "$worker" = js ] && script=(--edge-script bench/js-edge/worker.js)
# The origin takes attempts without the edge's attestation, so that the
# sold-out sale can be sold out straight at the origin.
RUSHGATE_WORKERD_INSPECTOR=$inspector stack_up --edge workerd "${script[@]}" \
  --origin-env RUSHGATE_REQUIRE_EDGE_ADMISSION=false
case "$path" in
  reject) tier=$(prepare_buy "$work/buy.txt" --users 100000 --urls-per-user 1 --stock 5000000 \
            --per-user-limit 100 --admission-p 0.01 --dedup-window-s 10) ;;
  sold) tier=$(sold_out_sale "$work/buy.txt") ;;
  *) echo "usage: $0 [reject|sold] [seconds]" >&2; exit 2 ;;
esac
wrk -t2 -c64 -d2s -s bench/wrk/replay.lua "$EDGE" -- "$work/buy.txt" "$tier" 2 60000 >/dev/null
wrk -t2 -c64 -d"$((secs + 2))s" -s bench/wrk/replay.lua "$EDGE" -- "$work/buy.txt" "$tier" 2 0 | grep -E "Requests/sec|statuses" &
load=$!
sleep 1
node bench/scripts/cpu-profile.mjs "$inspector" "$secs" 45
wait "$load"
