#!/usr/bin/env bash
# L1: a storm of logins at the origin — 500 at once, three times — against its
# /healthz latency when idle, measured in the same run: the logins' answers
# (200, or 503 `overloaded` at once past the hashers), /healthz's p50 and worst
# during each storm ÷ its idle p50, and the process's resident memory after the
# storms ÷ before. Starts its own stack (rushgate-dev); stops by itself.
# Usage: bench/scripts/logins.sh [logins per storm, default 500]
n="${1:-500}"
source "$(dirname "$0")/lib.sh"
stack_up
origin="http://$RUSHGATE_BIND"
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
curl -fsS "$origin/api/auth/register" -H 'content-type: application/json' \
  -d "{\"username\": \"storm\", \"password\": \"$password\"}" >/dev/null
for round in 1 2 3; do
  echo "== storm $round: $n logins at once"
  node bench/scripts/login-storm.mjs "$origin" "$origin_pid" storm "$password" "$n" | tee -a "$work/storms.json"
done
python3 - "$work/storms.json" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
for r in runs:
    print(f"L1 {r['ok']} logged in, {r['overloaded']} told to come back, {r['other']} other; "
          f"/healthz p50 {r['healthz_storm_p50_ms']} ms vs idle {r['healthz_idle_p50_ms']} ms "
          f"({r['healthz_storm_p50_ms'] / r['healthz_idle_p50_ms']:.2f}x), worst {r['healthz_storm_max_ms']} ms; "
          f"RSS {r['rss_before_mib']} -> {r['rss_after_mib']} MiB")
print(f"L1 memory after the storms / before the first: {runs[-1]['rss_after_mib'] / runs[0]['rss_before_mib']:.2f}")
PY
