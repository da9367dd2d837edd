#!/usr/bin/env bash
# The ticket bot against the door: the same crowd through the edge (workerd
# directly) on one stack, per admission mode (lottery `auto`, then `queue`),
# once of people only and once with a share of bot accounts behind 5
# addresses (exact-second timing, tight retries and polls, replayed URLs,
# direct hits on the origin, challenges solved at full native speed; people
# solve at a browser's pace). The sale's door is `auto`. Reports, per run:
# people's median time from the opening to a hold and, with bots, their share
# of the crowd and of the units sold, and the hashes (and CPU-seconds of one
# core here) they spent per unit won. Every invariant is checked by the
# simulator.
# Usage: bench/scripts/bots.sh [buyers, default 2000] [stock, default 100] [bot share, default 0.1] [admission modes, default "auto queue"]
users="${1:-2000}"
stock="${2:-100}"
share="${3:-0.1}"
modes="${4:-auto queue}"
source "$(dirname "$0")/lib.sh"
scripts/build-edge.sh | tail -n1
stack_up --edge workerd
for admission in $modes; do
  for bots in 0 "$share"; do
    echo "== admission $admission, bots $bots"
    "$target/rushgate-bench" crowd --target "$EDGE" --origin "http://$RUSHGATE_BIND" \
      --users "$users" --stock "$stock" --per-user-limit 1 --admission "$admission" \
      --dedup-window-s 5 --challenge auto --bots "$bots" --bot-addresses 5 \
      --concurrency "$users" --opens-in-s $(( 10 + users / 250 )) --max-seconds 180
  done
done
