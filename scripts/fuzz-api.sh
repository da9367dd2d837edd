#!/usr/bin/env bash
# Fuzzes the origin's HTTP API from its OpenAPI description with schemathesis
# (PyPI): every operation, as a signed-in customer and as an admin, a bounded
# number of generated requests each. Fails on any server error (5xx) and on any
# answer that breaks the description (status, content type, body, headers).
# Starts its own stack (rushgate-dev) and stops it. Installs schemathesis (in
# .venv/) if missing. Usage: scripts/fuzz-api.sh [examples per operation, default 25]
set -euo pipefail
cd "$(dirname "$0")/.."
examples="${1:-25}"
source scripts/services.sh
ensure_services
schemathesis=$(python_tool schemathesis "$SCHEMATHESIS_VERSION")
target="${CARGO_TARGET_DIR:-target}/debug"
cargo build --locked -q -p rushgate-origin -p rushgate-dev

work=$(mktemp -d)
"$target/rushgate-dev" up --pg-base "$RUSHGATE_PG_BASE" > "$work/stack.json" 2> "$work/stack.log" &
launcher=$!
trap 'kill -TERM "$launcher" 2>/dev/null; wait "$launcher" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 600); do
  [ -s "$work/stack.json" ] && break
  kill -0 "$launcher" 2>/dev/null || { cat "$work/stack.log" >&2; exit 1; }
  sleep 0.1
done
eval "$(python3 - "$work/stack.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f'origin={s["origins"][0]}')
print(f'export RUSHGATE_DATABASE_URL={s["database_url"]} RUSHGATE_REDIS_URL={s["redis_url"]}')
print(f'export RUSHGATE_REDIS_PREFIX={s["redis_prefix"]} RUSHGATE_SIGNING_KEY={s["signing_key"]}')
PY
)"

# login USER PASSWORD: prints a session token.
login() {
  curl -fsS "$origin/api/auth/login" -H 'content-type: application/json' \
    -d "{\"username\": \"$1\", \"password\": \"$2\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
echo "fuzz-admin-password" | "$target/rushgate-origin" user add --username fuzz-admin --role admin >/dev/null
curl -fsS "$origin/api/auth/register" -H 'content-type: application/json' \
  -d '{"username": "fuzz-customer", "password": "fuzz-customer-password"}' >/dev/null
admin=$(login fuzz-admin fuzz-admin-password)
customer=$(login fuzz-customer fuzz-customer-password)
# Something to find: an approved sale, open for an hour.
"$target/rushgate-origin" demo --opens-in-s 0 >/dev/null

checks=${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}
for who in customer admin; do
  echo "== schemathesis as the $who, $examples examples per operation"
  token=$([ "$who" = admin ] && echo "$admin" || echo "$customer")
  "$schemathesis" run "$origin/api/openapi.json" --checks "$checks" \
    --max-examples "$examples" --seed 1 --no-color \
    --exclude-path /api/auth/logout \
    -H "Authorization: Bearer $token" --report junit --report-dir "$work/$who" | tail -n 25
done
