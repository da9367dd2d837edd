#!/usr/bin/env bash
# P3: requests/s of the edge's rejection path (a lost admission round) in the
# Rust worker, against the same work written in JavaScript (bench/js-edge), both
# under workerd (no proxy), in the same run. Also prints the Wasm size.
# Starts its own Redis, origins and two edges with rushgate-dev on free ports;
# stops by itself. Usage: bench/scripts/edge.sh [seconds per run, default 10]
secs="${1:-10}"
source "$(dirname "$0")/lib.sh"
scripts/build-edge.sh | tail -n1
# Two stacks over the same Redis and database, each edge with its own origin.
stack_up --edge workerd
rust_edge=$EDGE
stack_up --edge workerd --edge-script bench/js-edge/worker.js --redis-url "$RUSHGATE_REDIS_URL" \
  --redis-prefix rg --database "${RUSHGATE_DATABASE_URL##*/}" --signing-key "$RUSHGATE_SIGNING_KEY"
js_edge=$EDGE

# Every request a distinct user with a valid purchase URL, so each one goes
# through the dedup shard (10 s window) and loses the 1 % admission round.
tier=$(prepare_buy "$work/buy.txt" --users 100000 --urls-per-user 1 --stock 5000000 \
  --per-user-limit 100 --admission-p 0.01 --dedup-window-s 10)

# Each round starts further into the file, so no user repeats inside a window.
hammer() { wrk -t2 -c64 -d"${secs}s" --latency -s bench/wrk/replay.lua "$1" -- "$work/buy.txt" "$tier" 2 "$2"; }
hammer "$rust_edge" 80000 >/dev/null; hammer "$js_edge" 80000 >/dev/null   # warm both
rust_all=(); js_all=()
for round in 0 1 2; do
  out=$(hammer "$rust_edge" $((round * 25000))); echo "round $round rust: $(echo "$out" | grep -E 'Requests/sec|statuses' | tr '\n' ' ')"
  rust_all+=("$(echo "$out" | rate)")
  out=$(hammer "$js_edge" $((round * 25000))); echo "round $round js:   $(echo "$out" | grep -E 'Requests/sec|statuses' | tr '\n' ' ')"
  js_all+=("$(echo "$out" | rate)")
done
# For scale: the dev stack's own cost, a trivial JSON route in each worker.
time_route() { wrk -t2 -c64 -d"${secs}s" "$1/api/time" | rate; }
rust_time=$(time_route "$rust_edge"); js_time=$(time_route "$js_edge")
python3 - "${rust_all[*]}" "${js_all[*]}" "$(wc -c < edge/build/index_bg.wasm)" "$rust_time" "$js_time" <<'PY'
import statistics, sys
rust, js = (statistics.median(map(float, a.split())) for a in sys.argv[1:3])
rust_time, js_time = float(sys.argv[4]), float(sys.argv[5])
print(f"\nP3 Rust-Wasm rejections/s {rust:,.0f} / JavaScript {js:,.0f} = {rust/js:.2f} (target >= 1.0)")
print(f"   for scale, GET /api/time: Rust {rust_time:,.0f} / JavaScript {js_time:,.0f} = {rust_time/js_time:.2f}")
print(f"Wasm after wasm-opt -Oz: {int(sys.argv[3]):,} bytes (target <= 400 KB)")
PY
