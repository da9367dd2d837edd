#!/usr/bin/env bash
# P3: the Rust worker against the same work written in JavaScript
# (bench/js-edge), both under the workerd binary directly (no proxy), in the
# same run, on two paths: the rejection path (a lost admission round, through
# the user's Durable Object) and the sold-out path (refused from the snapshot).
# Reports requests/s and the workerd process's CPU time per request (user +
# system, Durable Objects included), the cold start and the Wasm size.
# Starts its own Redis, origins and two edges with rushgate-dev on free ports;
# stops by itself. Usage: bench/scripts/edge.sh [seconds per run, default 10]
secs="${1:-10}"
source "$(dirname "$0")/lib.sh"
scripts/build-edge.sh | tail -n1
# Two stacks over the same Redis and database, each edge with its own origin.
stack_up --edge workerd
rust_edge=$EDGE; rust_pid=$edge_pid
stack_up --edge workerd --edge-script bench/js-edge/worker.js --redis-url "$RUSHGATE_REDIS_URL" \
  --redis-prefix rg --database "${RUSHGATE_DATABASE_URL##*/}" --signing-key "$RUSHGATE_SIGNING_KEY"
js_edge=$EDGE; js_pid=$edge_pid

# Rejections: every request a distinct user with a valid purchase URL, so each
# one goes through the dedup shard (10 s window) and loses the 1 % admission round.
reject_tier=$(prepare_buy "$work/reject.txt" --users 100000 --urls-per-user 1 --stock 5000000 \
  --per-user-limit 100 --admission-p 0.01 --dedup-window-s 10)
# Sold out: the single unit is gone (bought through the Rust edge: the origins
# take only attempts an edge admitted); both edges then refuse from their snapshots.
sold_tier=$(prepare_buy "$work/sold.txt" --users 2000 --urls-per-user 1 --stock 1 --per-user-limit 1)
wrk -t1 -c1 -d1s -s bench/wrk/replay.lua "$rust_edge" -- "$work/sold.txt" "$sold_tier" 1 >/dev/null

# cpu_ticks PID: user + system CPU time of a process so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# measure NAME URL PID FILE TIER OFFSET: one wrk run; prints "NAME req/s µs-CPU/req".
# Each rejection round starts further into the file, so no user repeats inside a window.
measure() {
  local before after out requests
  before=$(cpu_ticks "$3")
  out=$(wrk -t2 -c64 -d"${secs}s" --latency -s bench/wrk/replay.lua "$2" -- "$4" "$5" 2 "$6")
  after=$(cpu_ticks "$3")
  requests=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
  echo "$out" | grep statuses | sed "s/^/  $1 /" >&2
  echo "$1 $(echo "$out" | rate) $(( (after - before) * 1000000 / hz / requests ))"
}
measure warm "$rust_edge" "$rust_pid" "$work/reject.txt" "$reject_tier" 80000 >/dev/null
measure warm "$js_edge" "$js_pid" "$work/reject.txt" "$reject_tier" 80000 >/dev/null
measure warm "$rust_edge" "$rust_pid" "$work/sold.txt" "$sold_tier" 0 >/dev/null
measure warm "$js_edge" "$js_pid" "$work/sold.txt" "$sold_tier" 0 >/dev/null
results="$work/results.txt"
for round in 0 1 2; do
  echo "round $round" >&2
  measure reject-rust "$rust_edge" "$rust_pid" "$work/reject.txt" "$reject_tier" $((round * 25000)) >> "$results"
  measure reject-js "$js_edge" "$js_pid" "$work/reject.txt" "$reject_tier" $((round * 25000)) >> "$results"
  measure sold-rust "$rust_edge" "$rust_pid" "$work/sold.txt" "$sold_tier" 0 >> "$results"
  measure sold-js "$js_edge" "$js_pid" "$work/sold.txt" "$sold_tier" 0 >> "$results"
done
cold=$("$target/rushgate-bench" cold-start --runs 15)
python3 - "$results" "$(wc -c < edge/build/index_bg.wasm)" "$cold" <<'PY'
import collections, json, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, rate, cpu = line.split()
    runs[name].append((float(rate), float(cpu)))
med = {name: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v)) for name, v in runs.items()}
for path, label in (("reject", "rejection path (429 not_admitted)"), ("sold", "sold-out path (409 sold_out)")):
    (rr, rc), (jr, jc) = med[f"{path}-rust"], med[f"{path}-js"]
    print(f"P3 {label}: Rust-Wasm {rr:,.0f} req/s / JavaScript {jr:,.0f} = {rr/jr:.2f} (target >= 1.0); "
          f"CPU per request Rust {rc:.0f} µs / JavaScript {jc:.0f} µs = {rc/jc:.2f}")
cold = json.loads(sys.argv[3])
print(f"cold start (exec to first answer, median of {cold['runs']}): Rust {cold['rust_ms']:.0f} ms, "
      f"JavaScript {cold['js_ms']:.0f} ms, empty worker {cold['empty_ms']:.0f} ms; "
      f"the worker's own share Rust {cold['rust_worker_ms']:.0f} ms / JavaScript {cold['js_worker_ms']:.0f} ms; "
      f"first request Rust {cold['rust_first_request_ms']:.1f} ms / JavaScript {cold['js_first_request_ms']:.1f} ms")
print(f"Wasm after wasm-opt -Oz: {int(sys.argv[2]):,} bytes (target <= 400 KB)")
PY
