# Sourced by the benchmark scripts: a private stack on free loopback ports,
# torn down on exit. Sets RUSHGATE_* for the origin and the bench tools.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/services.sh
ensure_services
command -v wrk >/dev/null || apt_install wrk
target="${CARGO_TARGET_DIR:-target}/release"
cargo build --release --locked -q -p rushgate-origin -p rushgate-bench

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rate() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p'; }

export RUSHGATE_REDIS_PREFIX=bench RUSHGATE_LOG=warn
export RUSHGATE_DATABASE_URL="$RUSHGATE_PG_BASE/rushgate_bench_$(date +%s)_$RANDOM"
export RUSHGATE_SIGNING_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

start_redis() {
  rport=$(free_port)
  setsid redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    > "$work/redis.log" 2>&1 & pids+=($!)
  export RUSHGATE_REDIS_URL="redis://127.0.0.1:$rport"
  for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && return; sleep 0.05; done
}

# start_origin [extra env assignments...]
start_origin() {
  oport=$(free_port)
  export RUSHGATE_BIND="127.0.0.1:$oport"
  # setsid does not fork here (the script is not a group leader): $! is the origin.
  env "$@" setsid "$target/rushgate-origin" serve > "$work/origin.log" 2>&1 & origin_pid=$!
  pids+=("$origin_pid")
  for _ in $(seq 300); do curl -fs "http://$RUSHGATE_BIND/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
  cat "$work/origin.log"; exit 1
}

# start_edge DIR PORT: wrangler dev of the worker configured in DIR/wrangler.toml.
start_edge() {
  (cd "$1" && CI=true WRANGLER_SEND_METRICS=false setsid "$OLDPWD/node_modules/.bin/wrangler" dev \
    --config wrangler.toml --ip 127.0.0.1 --port "$2" --inspector-port "$(free_port)" \
    --show-interactive-dev-session=false --log-level error --persist-to "$work/state-$2" \
    --var "ORIGIN_URL:http://$RUSHGATE_BIND" --var "SIGNING_KEY:$RUSHGATE_SIGNING_KEY" \
    > "$work/wrangler-$2.log" 2>&1) & pids+=($!)
  # Both workers answer 401 to a purchase without a session once they are up.
  for _ in $(seq 900); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$2/buy/1/x")" = 401 ] && return
    sleep 0.1
  done
  cat "$work/wrangler-$2.log"; exit 1
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
