#!/usr/bin/env bash
# Latency under overload. The origin and Redis get half a core (a cgroup CPU
# quota, where this machine allows one; otherwise one core), the load generator
# a core of its own, so it can offer twice what the origin serves without
# becoming the bottleneck. First the origin's capacity (wrk, closed loop), then
# 2x that capacity offered open loop (rushgate-bench replay over at most 512
# connections, as an upstream pool holds them; latency from when each request
# was due): the p99 of the purchases that are served, and the share answered
# 503 `overloaded` at once. The same again with shedding off (the in-flight
# limit lifted and fixed), for comparison.
# Starts its own Redis and origins with rushgate-dev on free ports; stops by itself.
# Usage: bench/scripts/overload.sh [seconds per run, default 10]
secs="${1:-10}"
source "$(dirname "$0")/lib.sh"

# confine PID: onto core 0, and into a cgroup of half a core if possible.
cgroup=/sys/fs/cgroup/cpu/rushgate-bench-$$
if mkdir "$cgroup" 2>/dev/null; then
  echo 10000 > "$cgroup/cpu.cfs_period_us"
  echo 5000 > "$cgroup/cpu.cfs_quota_us"
  trap 'cleanup; rmdir "$cgroup" 2>/dev/null || true' EXIT
  echo "origin and Redis: half of core 0 (cgroup cpu quota)"
else
  cgroup=""
  echo "origin and Redis: core 0 (no cgroup quota here)"
fi
confine() {
  taskset -a -p -c 0 "$1" >/dev/null
  if [ -n "$cgroup" ]; then
    for t in /proc/"$1"/task/*; do echo "${t##*/}" > "$cgroup/tasks"; done
  fi
}
origin() {
  # One core: one runtime thread, as tokio would pick for one core.
  stack_up --origin-env TOKIO_WORKER_THREADS=1 --origin-env RUSHGATE_BUY_RATE_PER_S=10000000 \
    --origin-env RUSHGATE_BUY_BURST=10000000 --origin-env RUSHGATE_NO_WORKERS=true "$@"
  confine "$redis_pid"
  confine "$origin_pid"
}
no_shedding=(--origin-env RUSHGATE_BUY_MAX_IN_FLIGHT=1000000 --origin-env RUSHGATE_BUY_TARGET_MS=1000000)
requests() {
  prepare_buy "$work/buy.txt" --users 30000 --urls-per-user 40 --stock 5000000 --per-user-limit 100
}

# What the origin can serve: reservations/s, closed loop, nothing refused.
origin "${no_shedding[@]}"
capacity=$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" -s bench/wrk/replay.lua \
  "http://$RUSHGATE_BIND" -- "$work/buy.txt" "$(requests)" 1 | rate)
stack_down
offered=$(python3 -c "print(int(2 * $capacity))")
echo "capacity ${capacity%.*} reservations/s (wrk, 64 connections); offering $offered/s"

# overload LABEL [origin env...]: twice the capacity, open loop.
overload() {
  local label="$1"; shift
  origin "$@"
  local tier
  tier=$(requests)
  echo -n "$label: "
  TOKIO_WORKER_THREADS=1 taskset -c 1 "$target/rushgate-bench" replay \
    --target "http://$RUSHGATE_BIND" --requests "$work/buy.txt" --tier "$tier" \
    --rate "$offered" --seconds "$secs" --connections 512 | tail -n1
  stack_down
}
overload "shedding (defaults)"
overload "no shedding" "${no_shedding[@]}"
