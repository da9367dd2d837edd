#!/usr/bin/env bash
# Sets up and runs the whole of rushgate on this machine: installs or starts
# Redis and PostgreSQL if missing, builds the origin and the edge worker,
# migrates, seeds a demo admin, operator, customer and sale, starts the origin
# and the edge (wrangler dev, local workerd), and prints the URL and credentials.
# Ctrl-C stops everything it started. Usage: scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

mkdir -p .rushgate
if [ ! -s .rushgate/signing_key ]; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .rushgate/signing_key
  chmod 600 .rushgate/signing_key
fi
export RUSHGATE_SIGNING_KEY="${RUSHGATE_SIGNING_KEY:-$(cat .rushgate/signing_key)}"
export RUSHGATE_DATABASE_URL="${RUSHGATE_DATABASE_URL:-$RUSHGATE_PG_BASE/rushgate}"
export RUSHGATE_BIND="${RUSHGATE_BIND:-127.0.0.1:8080}"
edge_port="${RUSHGATE_EDGE_PORT:-8787}"
# The edge's secret, as wrangler dev reads it (git-ignored).
printf 'SIGNING_KEY=%s\n' "$RUSHGATE_SIGNING_KEY" > .dev.vars
chmod 600 .dev.vars

echo "building the origin (release) and the edge worker"
cargo build --release --locked -p rushgate-origin
scripts/build-edge.sh
bin="${CARGO_TARGET_DIR:-target}/release/rushgate-origin"

"$bin" migrate
"$bin" demo > .rushgate/demo.txt

pids=()
trap 'for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null; done; wait' EXIT INT TERM
setsid "$bin" serve > .rushgate/origin.log 2>&1 & pids+=($!)
CI=true WRANGLER_SEND_METRICS=false setsid node_modules/.bin/wrangler dev \
  --ip 127.0.0.1 --port "$edge_port" --inspector-port 9239 \
  --show-interactive-dev-session=false --var "ORIGIN_URL:http://$RUSHGATE_BIND" \
  --persist-to .rushgate/wrangler > .rushgate/edge.log 2>&1 & pids+=($!)

wait_for() {
  for _ in $(seq 600); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$2 did not start; see $3" >&2; tail -n 30 "$3" >&2; exit 1
}
wait_for "http://$RUSHGATE_BIND/readyz" origin .rushgate/origin.log
wait_for "http://127.0.0.1:$edge_port/api/time" edge .rushgate/edge.log

cat <<TXT

rushgate is running.
  open:    http://127.0.0.1:$edge_port   (the edge; pages, API, purchases)
  origin:  http://$RUSHGATE_BIND   (behind the edge; /buy only through it)
  logs:    .rushgate/origin.log, .rushgate/edge.log

$(cat .rushgate/demo.txt)

Press Ctrl-C to stop.
TXT
wait
