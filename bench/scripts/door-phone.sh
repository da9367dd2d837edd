#!/usr/bin/env bash
# D1 on slower devices: the pages' solver (door-solve.mjs) in headless
# Chromium confined, browser and all, to a share of this machine's CPU time
# by a CPU cgroup (v2's cpu.max, or v1's CFS quota; needs root): a share s of
# every core, the stand-in for a device whose cores are each 1/s times slower.
# Chromium's own CPU throttling does not slow Web Crypto; a cgroup's quota
# slows everything.
# Usage: bench/scripts/door-phone.sh [shares, default "1 0.33 0.125"]
set -euo pipefail
cd "$(dirname "$0")/../.."
shares="${1:-1 0.33 0.125}"
period=100000
for share in $shares; do
  quota=$(python3 -c "print(int($share * $period * $(nproc)))")
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    group=/sys/fs/cgroup/rushgate-door-$$
    echo +cpu > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    mkdir "$group"
    echo "$quota $period" > "$group/cpu.max"
  else
    group=/sys/fs/cgroup/cpu/rushgate-door-$$
    mkdir "$group"
    echo "$period" > "$group/cpu.cfs_period_us"
    echo "$quota" > "$group/cpu.cfs_quota_us"
  fi
  echo "== $share of every core"
  # The subshell joins the group first: Chromium and its processes inherit it.
  (echo "$BASHPID" > "$group/cgroup.procs"; exec node bench/scripts/door-solve.mjs 1) || status=$?
  rmdir "$group" 2>/dev/null || true
  [ "${status:-0}" = 0 ] || exit "$status"
done
