#!/usr/bin/env bash
# Relay memory under alert storms: peak RSS (VmHWM) of lookout for the storm shapes of
# bench/storm.py — 2,000 notifications x 3 alerts to one robot; one ~1 MiB notification
# (4,499 alerts) to two robots; a digest over 90 notifications with 45,070 alerts — with
# DingTalk channels at a local mock robot (20/min). Also reports the messages the robot
# received, the most in any 60 s (the budget is 20), and how many alerts the messages
# represent (listed, or counted in "…另有 N 条告警"). Target: peak RSS ≤ 40 MB each.
#
# Usage: bench/storm.sh   env: LOOKOUT_BIN=path skips the release build; SHAPES=storm,big,digest
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
RESULTS="$ROOT/bench/results/storm-$(date +%F).md"
mkdir -p "$ROOT/bench/results"

build_lookout
export LOOKOUT_BIN

{
    echo "# Relay storm memory — $(date '+%F %T %Z')"
    echo
    echo "Machine: $(nproc) cores; lookout $("$LOOKOUT_BIN" --version 2>/dev/null | head -1)." \
        "DingTalk channels at a local mock robot, rate_limit 20/min; the run waits until nothing is pending."
    echo
    echo "| shape | notifications | alerts | payload MB | idle RSS MB | peak RSS MB | messages | max in 60 s | alerts represented | pending at end | seconds |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    python3 "$ROOT/bench/storm.py" | while read -r line; do
        declare -A v=()
        for kv in $line; do v[${kv%%=*}]=${kv#*=}; done
        echo "| ${v[shape]} | ${v[notifications]} | ${v[alerts]} | ${v[payload_mb]} | ${v[idle_rss_mb]} |" \
            "${v[peak_rss_mb]} | ${v[messages]} | ${v[max_per_60s]} | ${v[represented]} | ${v[pending]} | ${v[seconds]} |"
    done
    echo
    echo "Targets: peak RSS ≤ 40 MB per shape; ≤ 20 messages per robot in any 60 s; every alert represented."
} | tee "$RESULTS"
log "wrote $RESULTS"
