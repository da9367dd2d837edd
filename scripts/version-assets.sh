#!/usr/bin/env bash
# Names the page assets after their content: static/assets/v<hash>/ holds every
# script and stylesheet of the pages, and the pages point at that directory. Any
# change to an asset gives the set a new name, so a deploy never serves a new page
# with old scripts or the reverse, and assets can be cached forever.
#   scripts/version-assets.sh          rename after editing assets
#   scripts/version-assets.sh --check  fail if the name or a reference is stale
set -euo pipefail
cd "$(dirname "$0")/../static"

dirs=(assets/v*/)
[ "${#dirs[@]}" = 1 ] || { echo "expected exactly one static/assets/v*/ directory" >&2; exit 1; }
current=$(basename "${dirs[0]}")
digest=$(cd "assets/$current" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12)
wanted="v$digest"


if [ "${1:-}" = "--check" ]; then
  [ "$current" = "$wanted" ] || { echo "static/assets/$current should be $wanted: run scripts/version-assets.sh" >&2; exit 1; }
  for page in ./*.html; do
    for ref in $(grep -o '/assets/v[0-9a-z]*/[A-Za-z0-9._-]*' "$page" | sort -u); do
      [ -f ".$ref" ] || { echo "$page refers to missing $ref" >&2; exit 1; }
      case "$ref" in /assets/"$current"/*) ;; *) echo "$page refers to $ref, not $current" >&2; exit 1 ;; esac
    done
  done
  echo "static assets: $current is current"
  exit 0
fi

if [ "$current" != "$wanted" ]; then
  mv "assets/$current" "assets/$wanted"
  sed -i "s#/assets/$current/#/assets/$wanted/#g" ./*.html
  echo "static/assets/$current -> $wanted"
else
  echo "static/assets/$current is current"
fi
