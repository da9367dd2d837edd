# Sourced by the benchmark scripts: builds the binaries, starts stacks with the
# launcher (rushgate-dev up) and stops them on exit, failure and Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/services.sh
ensure_services
command -v wrk >/dev/null || apt_install wrk
# RUSHGATE_BENCH_PROFILE=debug uses debug builds (the tests of these scripts).
profile="${RUSHGATE_BENCH_PROFILE:-release}"
target="${CARGO_TARGET_DIR:-target}/$profile"
release=$([ "$profile" = debug ] || echo --release)
cargo build $release --locked -q -p rushgate-origin -p rushgate-bench -p rushgate-dev

work=$(mktemp -d)
# Every process started here runs under setsid, which (this shell not being a
# group leader) execs it in place as the leader of a new process group: its pid
# is the group's id. A launcher stops its stack on SIGTERM, so it gets time.
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- -"$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 300); do kill -0 -- -"$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- -"$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rate() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p'; }

export RUSHGATE_LOG=warn

# stack_up [rushgate-dev up options...]: a whole stack from the launcher in the
# background (a private Redis, a fresh database, the origin; the edge if asked).
# Sets RUSHGATE_BIND (the first origin), EDGE (the edge's base URL, if any),
# RUSHGATE_REDIS_URL, RUSHGATE_DATABASE_URL, RUSHGATE_SIGNING_KEY for the bench
# tools, and stack_pid, origin_pid, redis_pid, edge_pid.
stack_up() {
  local out="$work/stack-$RANDOM.json"
  # The crowd stands in for Cloudflare's clients: the edge takes their
  # CF-Connecting-IP as their address. RUSHGATE_BENCH_ISOLATES (default 1)
  # runs the edge in that many isolates, RUSHGATE_BENCH_SPREAD (spray or
  # affinity) says how requests are spread over them.
  setsid "$target/rushgate-dev" up $release --pg-base "$RUSHGATE_PG_BASE" \
    --edge-var TRUST_CF_CONNECTING_IP=true \
    --isolates "${RUSHGATE_BENCH_ISOLATES:-1}" --spread "${RUSHGATE_BENCH_SPREAD:-spray}" "$@" \
    > "$out" 2> "$out.log" &
  stack_pid=$!
  pids+=("$stack_pid")
  for _ in $(seq 1800); do
    [ -s "$out" ] && break
    kill -0 "$stack_pid" 2>/dev/null || { cat "$out.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -s "$out" ] || { echo "the stack did not start" >&2; cat "$out.log" >&2; exit 1; }
  eval "$(python3 - "$out" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f'export RUSHGATE_BIND={s["origins"][0].removeprefix("http://")}')
print(f'export RUSHGATE_REDIS_URL={s["redis_url"]}')
print(f'export RUSHGATE_DATABASE_URL={s["database_url"]}')
print(f'export RUSHGATE_SIGNING_KEY={s["signing_key"]}')
print(f'EDGE={s["edge"] or ""}')
print(f'origin_pid={s["pids"]["origins"][0]}')
redis = s["pids"]["redis"]
# A cluster has several nodes: their pids, space-separated.
print(f'redis_pid="{" ".join(map(str, redis)) if isinstance(redis, list) else (redis or "")}"')
print(f'edge_pid={s["pids"]["edge"] or ""}')
PY
)"
}

# stack_down: stops the stack of the last stack_up.
stack_down() {
  kill -TERM "$stack_pid" 2>/dev/null || true
  wait "$stack_pid" 2>/dev/null || true
}

# prepare_buy FILE [prepare-buy options...]: a fresh sale at the origin and signed
# /buy requests for it in FILE (bench/wrk/replay.lua's format); prints the tier id.
prepare_buy() {
  local out="$1"; shift
  "$target/rushgate-bench" prepare-buy --origin "http://$RUSHGATE_BIND" --out "$out" "$@" |
    sed 's/.*"tier_id": \([0-9]*\).*/\1/'
}

# sold_out_sale FILE: a sale whose single unit is gone and 2,000 signed requests
# for it in FILE; prints the tier id.
sold_out_sale() {
  local tier
  tier=$(prepare_buy "$1" --users 2000 --urls-per-user 1 --stock 1 --per-user-limit 1)
  wrk -t1 -c1 -d1s -s bench/wrk/replay.lua "http://$RUSHGATE_BIND" -- "$1" "$tier" 1 >/dev/null
  echo "$tier"
}
