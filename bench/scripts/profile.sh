#!/usr/bin/env bash
# Flame graphs of the origin's two /buy hot paths under wrk load — reservations
# and sold-out rejections — sampled with perf, plus the top functions by own time.
# Writes artifacts/profile/{reserve,sold-out}.{svg,folded} (folded stacks compare
# with inferno-diff-folded). Installs perf (Debian:
# linux-perf) and inferno (flame graphs, from crates.io) if missing. Starts its own
# Redis and origin on free ports; stops by itself.
# Usage: bench/scripts/profile.sh [seconds per profile, default 5]
secs="${1:-5}"
source "$(dirname "$0")/lib.sh"
INFERNO_VERSION=0.12.3
command -v perf >/dev/null || apt_install linux-perf
cargo install --list | grep -q "^inferno v$INFERNO_VERSION:" ||
  cargo install --locked inferno --version "$INFERNO_VERSION"
out=artifacts/profile
mkdir -p "$out"

stack_up --origin-env RUSHGATE_BUY_RATE_PER_S=10000000 --origin-env RUSHGATE_BUY_BURST=10000000 \
  --origin-env RUSHGATE_NO_WORKERS=true

buy_tier=$(prepare_buy "$work/buy.txt" --users 30000 --urls-per-user 20 \
  --stock 5000000 --per-user-limit 100)
gone_tier=$(sold_out_sale "$work/gone.txt")

# profile NAME FILE TIER: perf samples of the origin while wrk replays FILE.
profile() {
  perf record -q -F 499 --call-graph dwarf,16384 -p "$origin_pid" -o "$work/$1.data" \
    -- sleep "$secs" 2>/dev/null &
  local perf_pid=$!
  wrk -t2 -c64 -d"${secs}s" -s bench/wrk/replay.lua "http://$RUSHGATE_BIND" -- "$2" "$3" 2 |
    grep -E "Requests/sec|statuses" | sed "s/^/$1: /"
  wait "$perf_pid"
  perf script -i "$work/$1.data" 2>/dev/null | inferno-collapse-perf > "$out/$1.folded"
  inferno-flamegraph --title "origin /buy: $1" < "$out/$1.folded" > "$out/$1.svg"
  echo "$1: top functions by own samples"
  perf report -i "$work/$1.data" --no-children --sort symbol --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && n++ < 12 { sub(/[ -]+$/, ""); print }'
}
profile reserve "$work/buy.txt" "$buy_tier"
profile sold-out "$work/gone.txt" "$gone_tier"
echo "flame graphs: $out/reserve.svg $out/sold-out.svg"
