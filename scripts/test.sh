#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the wasm32 build of core/, the
# edge worker build, and the workspace tests — unit, integration against real
# Redis and PostgreSQL, the system tests with the built worker under workerd
# (some on Redis Clusters of their own), the selling tests again on a Redis
# Cluster — the browser tests of the pages in headless Chromium, and schemathesis against
# the origin's OpenAPI description.
# Installs and starts what is missing (Redis, PostgreSQL, clang, the wasm32
# target, worker-build, wasm-bindgen-cli, Node packages, schemathesis).
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
# What cannot be installed from here stops the run now, not after the build
# (one test runs the edge under wrangler dev, as users do).
require_node
ensure_cc
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
command -v clang >/dev/null || { echo "installing clang (ring's wasm32 build needs it)"; apt_install clang; }
command -v chromium >/dev/null || { echo "installing chromium (the browser tests)"; apt_install chromium; }
python_tool schemathesis "$SCHEMATHESIS_VERSION" >/dev/null

step "services"
ensure_services
export DATABASE_URL="$RUSHGATE_PG_BASE/postgres"
export RUSHGATE_TEST_REDIS_URL="$RUSHGATE_REDIS_URL"
echo "PostgreSQL: ${RUSHGATE_PG_BASE%%@*}@…  Redis: $RUSHGATE_REDIS_URL"

step "static assets are versioned"
scripts/version-assets.sh --check

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "core builds for wasm32"
cargo check -p rushgate-core --target wasm32-unknown-unknown --locked

step "edge worker"
scripts/build-edge.sh

step "the production bundle (wrangler deploy --dry-run --env production)"
scripts/check-deploy.sh

step "cargo test"
# The crowd tests hold a few thousand sockets open at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo test --workspace --locked

step "selling tests on a Redis Cluster (3 masters, 3 replicas)"
# The API tests again, against a private cluster on free ports (the system
# tests start clusters of their own).
cargo build --locked -q -p rushgate-dev
cluster_log=$(mktemp)
"${CARGO_TARGET_DIR:-target}/debug/rushgate-dev" redis-cluster >"$cluster_log" &
cluster_pid=$!
trap 'kill "$cluster_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  grep -q redis_url "$cluster_log" && break
  kill -0 "$cluster_pid" 2>/dev/null || { echo "the Redis Cluster did not start"; exit 1; }
  sleep 0.1
done
cluster_url=$(grep -o 'redis://[^"]*' "$cluster_log")
echo "cluster seeds: $cluster_url"
RUSHGATE_TEST_REDIS_URL="$cluster_url" RUSHGATE_TEST_REDIS_CLUSTER=true \
  cargo test --locked -p rushgate-origin --test api
kill "$cluster_pid"; wait "$cluster_pid" 2>/dev/null || true
trap - EXIT

step "API fuzzing (schemathesis against the OpenAPI description)"
scripts/fuzz-api.sh 25

step "browser tests (Chromium, playwright-core)"
cargo build --locked -q -p rushgate-origin -p rushgate-dev
node --test tests/browser/
echo "screenshots: artifacts/screenshots/"

# The compose file, both profiles (compose v2, else Debian's docker-compose v1).
compose=()
if docker compose version >/dev/null 2>&1; then compose=(docker compose)
else
  command -v docker-compose >/dev/null || { echo "installing docker-compose"; apt_install docker-compose; }
  compose=(docker-compose)
fi
if [ "${#compose[@]}" -gt 0 ]; then
  step "${compose[*]} config"
  key=$(printf '0%.0s' {1..64})
  RUSHGATE_SIGNING_KEY=$key "${compose[@]}" config -q
  RUSHGATE_SIGNING_KEY=$key "${compose[@]}" --profile cluster config -q
fi

step "all tests passed"
