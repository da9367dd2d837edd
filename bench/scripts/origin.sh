#!/usr/bin/env bash
# P1 and P2: the origin's /buy path against baselines measured in the same run.
#   P1 = origin reservations/s ÷ redis-benchmark EVALSHA/s of reserve.lua (pipelined)
#   P2 = origin sold-out rejections/s ÷ a bare axum handler's req/s
# Starts its own redis-server and origin (rushgate-dev) on free ports with a fresh database;
# needs wrk and redis-benchmark (Debian: wrk, redis-tools). Stops by itself.
# Usage: bench/scripts/origin.sh [seconds per run, default 10]
secs="${1:-10}"
source "$(dirname "$0")/lib.sh"
# The /buy path alone: orders pile up in the streams while it runs (the order
# worker has its own figure, P4, and can run in separate processes).
stack_up --origin-env RUSHGATE_BUY_RATE_PER_S=10000000 --origin-env RUSHGATE_BUY_BURST=10000000 \
  --origin-env RUSHGATE_NO_WORKERS=true
tport=$(free_port)
setsid "$target/rushgate-bench" trivial-server --bind "127.0.0.1:$tport" 2>/dev/null & pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$tport/" >/dev/null 2>&1 && break; sleep 0.05; done
rport=${RUSHGATE_REDIS_URL##*:}

echo "== preparing requests"
# A fresh sale per round with more signed requests than a round can send, so
# every request is a new reservation (never a replay).
# Room for 60,000 reservations/s, well above what two cores reach (a user may
# hold at most 100 units of an event).
per_user=$(( secs * 2 > 10 ? (secs * 2 < 100 ? secs * 2 : 100) : 10 ))
prepare_round() {
  buy_tier=$(prepare_buy "$work/buy.txt" --users 30000 --urls-per-user "$per_user" \
    --stock 5000000 --per-user-limit 100)
}
gone_tier=$(sold_out_sale "$work/gone.txt")
redis_all=(); origin_all=(); soldout_all=(); trivial_all=()

sha=$(redis-cli -p "$rport" SCRIPT LOAD "$(cat origin/src/sale/reserve.lua)")
tag="bench:{e999999:b0}"
redis-cli -p "$rport" SET "$tag:stock:t1" 100000000000 >/dev/null
exp=$(( $(date +%s) + 3600 ))
evalsha() {
  redis-benchmark -p "$rport" -q -c 50 -P 16 -n 500000 -r 1000000000 \
    EVALSHA "$sha" 6 "$tag:stock:t1" "$tag:users" "$tag:nonce:__rand_int__" "$tag:orders" \
    "$tag:queued" "$tag:funnel" "__rand_int__" "__rand_int__" 1 100 "$exp" \
    "{\"id\":\"0190f5c2-a1b4-7cc3-a9d2-e8b1c4f6a7d8\",\"user_id\":__rand_int__,\"event_id\":999999,\"tier_id\":1,\"bucket\":0,\"quantity\":1,\"amount_cents\":1000,\"created_ms\":$(date +%s)000,\"payment_window_s\":300}" \
    | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n1
  redis-cli -p "$rport" DEL "$tag:orders" "$tag:queued" "$tag:users" >/dev/null
}
hammer() { wrk -t2 -c64 -d"${secs}s" --latency "$@"; }

# Three rounds, each measuring every figure once, so drift on a shared machine
# hits baselines and subjects alike; the medians are reported.
for round in 1 2 3; do
  echo "== round $round"
  prepare_round
  r=$(evalsha); echo "redis EVALSHA/s: $r"; redis_all+=("$r")
  out=$(hammer -s bench/wrk/replay.lua "http://$RUSHGATE_BIND" -- "$work/buy.txt" "$buy_tier" 2)
  echo "$out" | grep -E "Requests/sec|statuses|99%" | sed 's/^/  reserve /'; origin_all+=("$(echo "$out" | rate)")
  out=$(hammer -s bench/wrk/replay.lua "http://$RUSHGATE_BIND" -- "$work/gone.txt" "$gone_tier" 2)
  echo "$out" | grep -E "Requests/sec|statuses|99%" | sed 's/^/  sold-out /'; soldout_all+=("$(echo "$out" | rate)")
  out=$(hammer "http://127.0.0.1:$tport/")
  echo "$out" | grep -E "Requests/sec|99%" | sed 's/^/  trivial /'; trivial_all+=("$(echo "$out" | rate)")
done

python3 - "${redis_all[*]}" "${origin_all[*]}" "${soldout_all[*]}" "${trivial_all[*]}" <<'PY' | tee "$work/summary"
import statistics, sys
redis, origin, soldout, trivial = (statistics.median(map(float, a.split())) for a in sys.argv[1:])
print(f"\nmedians of 3 rounds")
print(f"P1 origin reservations/s {origin:,.0f} / redis EVALSHA/s {redis:,.0f} = {origin/redis:.2f} (target >= 0.7)")
print(f"P2 sold-out rejections/s {soldout:,.0f} / bare axum req/s {trivial:,.0f} = {soldout/trivial:.2f} (target >= 0.5)")
print(f"half-peak {origin/2:.0f}")
print(f"quarter-peak {origin/4:.0f}")
PY

# Latency of reservations at half the peak rate, open loop (no coordinated omission).
half=$(sed -n 's/^half-peak //p' "$work/summary")
echo "== /buy latency at half the peak rate ($half req/s, open loop)"
prepare_round
"$target/rushgate-bench" replay --target "http://$RUSHGATE_BIND" --requests "$work/buy.txt" \
  --tier "$buy_tier" --rate "$half" --seconds "$secs" | tail -n1
# For scale: the replay client costs more CPU per request than wrk, so on a small
# machine half of wrk's peak can already saturate it; a quarter shows the path.
quarter=$(sed -n 's/^quarter-peak //p' "$work/summary")
"$target/rushgate-bench" replay --target "http://$RUSHGATE_BIND" --requests "$work/buy.txt" \
  --tier "$buy_tier" --rate "$quarter" --seconds "$secs" --offset $((half * secs + 1000)) | tail -n1

