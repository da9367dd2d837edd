#!/usr/bin/env bash
# Selling on a Redis Cluster, against baselines measured in the same run:
#   C1 = origin reservations/s on a 3-master cluster (no WAIT) ÷ on a single node
#   C2 = origin reservations/s on the cluster with WAIT 1 (RUSHGATE_REDIS_REPLICAS=1)
#        ÷ without it (0)
#   C3 = the longest pause in sales after kill -9 of the master holding the most
#        stock: a sale in 6 buckets (spread over the masters) vs in 1
# Starts its own stacks (rushgate-dev) on free ports: a single redis-server, and
# two private clusters of 3 masters + 3 replicas; needs wrk. Stops by itself.
# Usage: bench/scripts/cluster.sh [seconds per run, default 10]
secs="${1:-10}"
source "$(dirname "$0")/lib.sh"

# stack NAME [rushgate-dev up options...]: a stack for the /buy path alone,
# remembered under NAME.
declare -A bind db key
stack() {
  local name="$1"; shift
  stack_up --origin-env RUSHGATE_BUY_RATE_PER_S=10000000 --origin-env RUSHGATE_BUY_BURST=10000000 \
    --origin-env RUSHGATE_NO_WORKERS=true "$@"
  bind[$name]=$RUSHGATE_BIND; db[$name]=$RUSHGATE_DATABASE_URL; key[$name]=$RUSHGATE_SIGNING_KEY
}
stack single
stack wait --redis-cluster 3
stack nowait --redis-cluster 3 --origin-env RUSHGATE_REDIS_REPLICAS=0

# reserve NAME: a fresh sale in 6 buckets on stack NAME, then wrk sends signed
# /buy requests that are all new reservations; prints reservations/s.
reserve() {
  local name="$1" tier out
  export RUSHGATE_BIND=${bind[$name]} RUSHGATE_DATABASE_URL=${db[$name]} RUSHGATE_SIGNING_KEY=${key[$name]}
  tier=$(prepare_buy "$work/$name.txt" --users 10000 --urls-per-user 40 --stock 5000000 \
    --per-user-limit 100 --buckets 6)
  out=$(wrk -t2 -c64 -d"${secs}s" --latency -s bench/wrk/replay.lua "http://$RUSHGATE_BIND" \
    -- "$work/$name.txt" "$tier" 2)
  echo "$out" | grep -E "Requests/sec|statuses|99%" | sed "s/^/  $name /" >&2
  echo "$out" | rate
}

declare -A all
for round in 1 2 3; do
  echo "== round $round"
  for name in single nowait wait; do
    all[$name]+="$(reserve "$name") "
  done
done

python3 - "${all[single]}" "${all[nowait]}" "${all[wait]}" <<'PY'
import statistics, sys
single, nowait, wait = (statistics.median(map(float, a.split())) for a in sys.argv[1:])
print("\nmedians of 3 rounds, reservations/s")
print(f"C1 cluster {nowait:,.0f} / single node {single:,.0f} = {nowait/single:.2f}")
print(f"C2 cluster with WAIT 1 {wait:,.0f} / without {nowait:,.0f} = {wait/nowait:.2f}")
PY
# Stop the three stacks before the failover runs start their own.
for p in "${pids[@]}"; do kill -TERM -- -"$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do
  for _ in $(seq 300); do kill -0 -- -"$p" 2>/dev/null || break; sleep 0.1; done
done
pids=()

echo "== C3: kill -9 of the master with the most stock, mid-sale"
for buckets in 1 6; do
  "$target/rushgate-bench" failover --buckets "$buckets" $release
done
