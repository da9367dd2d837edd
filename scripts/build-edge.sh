#!/usr/bin/env bash
# Builds the edge worker into edge/build/ (Rust → Wasm → wasm-bindgen → shim),
# offline: wasm-bindgen and wasm-opt come from local installs, never downloads.
# Installs what is missing (clang, the wasm32 target, worker-build and
# wasm-bindgen-cli at the pinned versions, the npm packages).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130

command -v clang >/dev/null || { echo "installing clang"; apt_install clang; }
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
installed() { "$1" --version 2>/dev/null | grep -q "$2"; }
if ! installed worker-build "$WORKER_BUILD_VERSION"; then
  # It downloads over native TLS: OpenSSL's headers and pkg-config to find them.
  pkg-config --exists openssl 2>/dev/null || { echo "installing pkg-config and libssl-dev (worker-build needs them)"; apt_install pkg-config libssl-dev; }
  cargo install worker-build --version "$WORKER_BUILD_VERSION"
fi
installed wasm-bindgen "$WASM_BINDGEN_VERSION" ||
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
if [ ! -x node_modules/.bin/wrangler ] || [ ! -x node_modules/.bin/wasm-opt ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
# RUSHGATE_EDGE_NAMES=1 keeps function names, for profiles.
names="${RUSHGATE_EDGE_NAMES:-0}"
[ "$names" = 1 ] && export CARGO_PROFILE_WASM_RELEASE_STRIP=false
(cd edge && worker-build --profile wasm-release --no-opt)
# wasm-bindgen-futures wakes its tasks with queueMicrotask where the runtime has
# it, else with a resolved promise. In workerd queueMicrotask wraps every
# callback for its async context, which made it 4-5 % of the edge's CPU on the
# /buy path; a resolved promise's then() is the runtime's cheapest microtask.
# The glue's wake-up import gets the fallback's code; if a new wasm-bindgen
# changes the glue, the build says so rather than go on without it.
glue=edge/build/index.js
wake='function(e){queueMicrotask(e)}'
grep -qF "$wake" "$glue" || { echo "build-edge: the glue's queueMicrotask import changed; update this step"; exit 1; }
sed -i "s/function(e){queueMicrotask(e)}/function(e){Promise.resolve().then(e)}/" "$glue"
# wasm-opt -Oz and drop the name section: smaller than worker-build's own pass.
wasm=edge/build/index_bg.wasm
strip=(--strip-debug)
[ "$names" = 1 ] && strip=(--debuginfo)
"$WASM_OPT_BIN" -Oz "${strip[@]}" --strip-producers \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-exception-handling \
  "$wasm" -o "$wasm.opt" && mv "$wasm.opt" "$wasm"
echo "edge built: $wasm $(wc -c < "$wasm") bytes ($(gzip -9 -c "$wasm" | wc -c) gzipped)"
