#!/usr/bin/env bash
# Checks what `wrangler deploy --env production` would upload, offline:
# `wrangler deploy --dry-run --outdir` runs the [build] step of wrangler.toml
# (scripts/build-edge.sh) and bundles the worker; this script then checks the
# bundle (the module exports the fetch handler and the DedupShard,
# QueueFrontier and SaleDesk classes, the Wasm is the one just built, sizes within
# Cloudflare's limits) and the bindings wrangler reports (the Durable Objects,
# an https origin, every var).
# Usage: scripts/check-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log="$out/wrangler.log"
CI=true WRANGLER_SEND_METRICS=false node_modules/.bin/wrangler deploy --dry-run \
  --env production --outdir "$out/bundle" > "$log" 2>&1 || { cat "$log"; exit 1; }
fail() { echo "deploy check: $*"; cat "$log"; exit 1; }

module="$out/bundle/shim.js"
[ -f "$module" ] || fail "no worker module in the bundle"
wasm=$(ls "$out"/bundle/*.wasm 2>/dev/null | head -n1)
[ -n "$wasm" ] || fail "no Wasm in the bundle"
cmp -s "$wasm" edge/build/index_bg.wasm || fail "the bundled Wasm is not the one just built"
exports=$(sed -n '/^export {/,/}/p' "$module")
grep -Eq '(as )?DedupShard,?$' <<<"$exports" || fail "the module does not export DedupShard"
grep -Eq '(as )?QueueFrontier,?$' <<<"$exports" || fail "the module does not export QueueFrontier"
grep -Eq '(as )?SaleDesk,?$' <<<"$exports" || fail "the module does not export SaleDesk"
grep -Eq '(as )?FunnelTally,?$' <<<"$exports" || fail "the module does not export FunnelTally"
grep -Eq 'as default,?$' <<<"$exports" || fail "the module has no default export (the fetch handler)"
# Cloudflare: 64 MiB per asset, 10 MiB gzipped per worker on paid plans (3 on free).
gzipped=$(cat "$module" "$wasm" | gzip -9 | wc -c)
[ "$gzipped" -lt $((3 * 1024 * 1024)) ] || fail "the worker is $gzipped bytes gzipped (free plan limit 3 MiB)"

grep -q 'env.DEDUP (DedupShard) *Durable Object' "$log" || fail "no DedupShard binding"
grep -q 'env.QUEUE (QueueFrontier) *Durable Object' "$log" || fail "no QueueFrontier binding"
grep -q 'env.DESK (SaleDesk) *Durable Object' "$log" || fail "no SaleDesk binding"
grep -q 'env.TALLY (FunnelTally) *Durable Object' "$log" || fail "no FunnelTally binding"
grep -Eq 'env.ORIGIN_URL \("https://' "$log" || fail "the production origin is not https"
for var in ORIGIN_URLS EVENT_CACHE_TTL_S EVENT_CACHE_SWR_S DEDUP_SHARDS REPORT_EVERY_MS PURCHASE_URL_TTL_S TRUST_CF_CONNECTING_IP TALLY_SHARDS EXPECTED_PEAK_PER_S; do
  grep -q "env.$var " "$log" || fail "var $var is not set in production"
done
grep -q 'Read [0-9]* files from the assets directory' "$log" || fail "the static pages are not uploaded"
# Enough dedup shards for the expected peak: ⌈peak × 1.2 × 1.5 / 500⌉
# (core::dedup::shards_needed), so no shard needs more than 500 requests a second.
var() { sed -n "s/.*env\.$1 (\"\([0-9]*\)\").*/\1/p" "$log" | head -n1; }
shards=$(var DEDUP_SHARDS); peak=$(var EXPECTED_PEAK_PER_S)
[ -n "$shards" ] && [ -n "$peak" ] || fail "DEDUP_SHARDS and EXPECTED_PEAK_PER_S must be numbers"
needed=$(( (peak * 18 + 4999) / 5000 ))
[ "$shards" -ge "$needed" ] || fail "DEDUP_SHARDS=$shards is too few for EXPECTED_PEAK_PER_S=$peak: at least $needed"
echo "deploy bundle: $(basename "$module") + $(basename "$wasm"), $gzipped bytes gzipped; bindings and assets as configured"
