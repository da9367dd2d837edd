#!/usr/bin/env bash
# Shielding: a crowd 1,000× the stock through the edge; how many /buy requests
# reach the origin per unit sold (target ≤ 2), with every invariant checked.
# Starts its own Redis, origin and edge (workerd directly; RUSHGATE_BENCH_EDGE=wrangler
# for `wrangler dev`) with rushgate-dev; stops by itself.
# Usage: bench/scripts/shielding.sh [buyers, default 10000] [stock, default 10]
#        [more rushgate-bench crowd options, e.g. --bots 0.05 --bot-period-ms 20]
users="${1:-10000}"
stock="${2:-10}"
shift $(( $# < 2 ? $# : 2 ))
source "$(dirname "$0")/lib.sh"
scripts/build-edge.sh | tail -n1
stack_up --edge "${RUSHGATE_BENCH_EDGE:-workerd}"
"$target/rushgate-bench" crowd --target "$EDGE" --origin "http://$RUSHGATE_BIND" \
  --users "$users" --stock "$stock" --admission 0.2,0.5,1.0 --dedup-window-s 5 --concurrency 500 "$@"
