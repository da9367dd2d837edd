#!/usr/bin/env bash
# The ticket bot against the door: the same crowd through the edge (workerd
# directly) on one stack, once of people only and once with a share of bot
# accounts behind 5 addresses (exact-second timing, tight retries, replayed
# URLs, direct hits on the origin, challenges solved at full native speed).
# The sale's door is `auto`, admission `auto`. Reports, per run: people's
# median time from the opening to a hold and, with bots, their share of the
# crowd and of the units sold and the CPU-seconds they spent per unit won.
# Every invariant is checked by the simulator.
# Usage: bench/scripts/bots.sh [buyers, default 2000] [stock, default 100] [bot share, default 0.1]
users="${1:-2000}"
stock="${2:-100}"
share="${3:-0.1}"
source "$(dirname "$0")/lib.sh"
scripts/build-edge.sh | tail -n1
stack_up --edge workerd
for bots in 0 "$share"; do
  echo "== bots $bots"
  "$target/rushgate-bench" crowd --target "$EDGE" --origin "http://$RUSHGATE_BIND" \
    --users "$users" --stock "$stock" --per-user-limit 1 --admission auto --dedup-window-s 5 \
    --challenge auto --bots "$bots" --bot-addresses 5 \
    --concurrency "$users" --opens-in-s $(( 5 + users / 500 )) --max-seconds 120
done
