#!/usr/bin/env bash
# Many isolates: the same crowds through the edge in K = 1, 4, 16 and 32
# isolates sharing one set of Durable Objects and one location cache, requests
# sprayed over them at random (and, for the automatic lottery, also by client
# address). Per run: origin /buy requests per unit sold, the busiest Durable
# Object of each kind (dedup shards, the sale desk, the queue's frontier, the
# funnel tallies) in requests a second, what else reached the origin (event
# reads, funnel reports), seconds from the opening to the first sold-out
# answer, and for the opening draw who got in. Every invariant is checked by
# the simulator; each K starts and stops its own stacks.
# Usage: bench/scripts/isolates.sh ["1 4 16 32"] [buyers for rounds, default 10000]
ks="${1:-1 4 16 32}"
users="${2:-10000}"
source "$(dirname "$0")/lib.sh"
scripts/build-edge.sh | tail -n1
run() {
  local label=$1
  shift
  echo "== $label"
  "$target/rushgate-bench" crowd --target "$EDGE" --origin "http://$RUSHGATE_BIND" "$@" |
    tee "$work/run.txt" | grep -E "^(units sold|invariants|sold out|opening draw|sale desk|busiest|queue frontier|dedup|origin besides)"
  python3 - "$label" "$work/run.txt" <<'PY'
import re, sys
label, text = sys.argv[1], open(sys.argv[2]).read()
def find(pattern, default="-"):
    m = re.search(pattern, text)
    return m.group(1) if m else default
print(f"MI {label}: per unit {find(r'= ([0-9.]+) per unit sold')}, "
      f"dedup peak {find(r'dedup Durable Objects: .* peak ([0-9]+)/s')}, "
      f"desk peak {find(r'sale desk: .* peak ([0-9]+)/s')}, "
      f"frontier peak {find(r'queue frontier object: .* peak ([0-9]+)/s')}, "
      f"tally peak {find(r'busiest funnel tally: .* peak ([0-9]+)/s')}, "
      f"event reads {find(r'origin besides /buy: ([0-9]+) event reads')}, "
      f"edge reports {find(r'event reads, ([0-9]+) edge reports')}, "
      f"sold out after {find(r'sold out ([0-9.]+) s after')} s")
PY
}
for k in $ks; do
  RUSHGATE_BENCH_ISOLATES=$k RUSHGATE_BENCH_SPREAD=spray stack_up --edge workerd
  common=(--dedup-window-s 5 --per-user-limit 1)
  run "K=$k spray rounds $users x 10" "${common[@]}" --users "$users" --stock 10 --admission 0.2,0.5,1.0 --concurrency 500
  run "K=$k spray rounds $users x 100" "${common[@]}" --users "$users" --stock 100 --admission 0.2,0.5,1.0 --concurrency 500
  run "K=$k spray auto 3000 x 100" "${common[@]}" --users 3000 --stock 100 --admission auto --concurrency 3000 --opens-in-s 16
  run "K=$k spray queue 2000 x 100" "${common[@]}" --users 2000 --stock 100 --admission queue --concurrency 2000 --opens-in-s 14 --max-seconds 300
  stack_down
  RUSHGATE_BENCH_ISOLATES=$k RUSHGATE_BENCH_SPREAD=affinity stack_up --edge workerd
  run "K=$k affinity auto 2000 x 100" "${common[@]}" --users 2000 --stock 100 --admission auto --concurrency 2000 --opens-in-s 14
  stack_down
done
