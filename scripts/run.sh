#!/usr/bin/env bash
# Sets up and runs the whole of rushgate on this machine: installs or starts
# Redis and PostgreSQL if missing, builds the origin, the launcher and the edge
# worker, then starts them with the launcher (rushgate-dev): the origin on :8080
# over the machine's Redis and the `rushgate` database, the edge under
# `wrangler dev` (local workerd; workerd directly where Node.js is older than
# wrangler needs) on :8787, the demo admin, operator, customer and sale seeded;
# prints the URL and credentials. Ctrl-C stops everything it started. Needs
# Rust; installs the rest (Debian/Ubuntu).
# Usage: scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services
ensure_cc
ensure_node

mkdir -p .rushgate
if [ ! -s .rushgate/signing_key ]; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .rushgate/signing_key
  chmod 600 .rushgate/signing_key
fi
export RUSHGATE_SIGNING_KEY="${RUSHGATE_SIGNING_KEY:-$(cat .rushgate/signing_key)}"
origin_port="${RUSHGATE_ORIGIN_PORT:-8080}"
edge_port="${RUSHGATE_EDGE_PORT:-8787}"

echo "building the origin and the launcher (release) and the edge worker"
cargo build --release --locked -p rushgate-origin -p rushgate-dev
scripts/build-edge.sh
target="${CARGO_TARGET_DIR:-target}/release"

# The edge under `wrangler dev`, as users run it; under workerd directly (the
# same runtime, without wrangler's dev server) where Node.js is too old for it.
edge=wrangler
if ! node_version_ok; then
  edge=workerd
  echo "wrangler needs Node.js >= $NODE_MIN (found $(node --version)): running the edge under workerd directly"
fi

echo "starting (logs in .rushgate/)"
"$target/rushgate-dev" up --release --demo --edge "$edge" \
  --redis-url "$RUSHGATE_REDIS_URL" --redis-prefix rg \
  --pg-base "$RUSHGATE_PG_BASE" --database rushgate \
  --origin-port "$origin_port" --edge-port "$edge_port" --dir .rushgate \
  --log info,sqlx=warn > .rushgate/stack.json 2> >(tee .rushgate/demo.txt >&2) &
launcher=$!
trap 'kill -TERM "$launcher" 2>/dev/null; wait "$launcher"' EXIT INT TERM
for _ in $(seq 1200); do
  [ -s .rushgate/stack.json ] && break
  kill -0 "$launcher" 2>/dev/null || { echo "the stack did not start" >&2; exit 1; }
  sleep 0.1
done

cat <<TXT

rushgate is running.
  open:    http://127.0.0.1:$edge_port   (the edge; pages, API, purchases)
  origin:  http://127.0.0.1:$origin_port   (behind the edge; /buy only through it)
  logs:    .rushgate/
  webhooks: .rushgate/webhooks.log   (every order event, as the demo's receiver got it)

Press Ctrl-C to stop.
TXT
wait "$launcher"
