#!/usr/bin/env bash
# The fair queue against admission rounds: the same crowd, 1,000× the stock,
# through the edge (workerd directly) on one stack, once in lottery mode
# (rounds 0.2, 0.5, 1.0) and once in queue mode (everyone joins before the
# opening). Reports, per mode: origin /buy requests per unit sold, seconds
# from the opening to the first "sold out", and the busiest Durable Object;
# for the queue also its requests per buyer while waiting and the frontier
# object's load. Every invariant is checked by the simulator.
# Usage: bench/scripts/queue.sh [buyers, default 10000] [stock, default 10]
users="${1:-10000}"
stock="${2:-10}"
source "$(dirname "$0")/lib.sh"
scripts/build-edge.sh | tail -n1
stack_up --edge workerd
for admission in 0.2,0.5,1.0 queue; do
  echo "== admission $admission"
  # The queue's buyers wait in line for their turn: all of them are active at
  # once, and the sale opens once they could all have joined.
  "$target/rushgate-bench" crowd --target "$EDGE" --origin "http://$RUSHGATE_BIND" \
    --users "$users" --stock "$stock" --admission "$admission" --dedup-window-s 5 \
    --concurrency "$users" --opens-in-s $(( 10 + users / 500 )) --max-seconds 300
done
