#!/usr/bin/env bash
# Webhook ingest benchmark (SPEC §5): how many Alertmanager notifications a second lookout
# durably accepts (200 only after the outbox commit: SQLite WAL, synchronous=FULL, group
# commit — its normal settings), and the p50/p99 of the accept, against a bare hyper
# handler that answers 200 without persisting anything, with the same load client, side
# by side in one run because this 2-core machine is noisy.
#
# The client (bench/ingest-load) posts the real payloads of examples/payloads in turn over
# CONNECTIONS keep-alive connections for DURATION seconds; every request is a distinct
# notification (groupKey and fingerprints carry a per-request suffix), so dedupe never
# short-circuits a commit. lookout runs twice, each time on a fresh state dir:
#
#   console     a `console` channel, stdout to /dev/null: delivery runs alongside ingest
#               (1,000 messages/s budget), so the backlog stays small.
#   undeliverable  a DingTalk channel pointed at a closed local port, rate_limit 1/h,
#               retry 1h: nothing is ever delivered, the backlog grows for the whole run
#               (an alert storm against a robot whose budget is spent).
#
# After each lookout run the process is killed with SIGKILL and the outbox is counted with
# the sqlite3 CLI: it must hold exactly the notifications that were answered "accepted".
# Prints a markdown report and writes it to bench/results/ingest-<date>.md.
#
# Usage: bench/ingest.sh   env: DURATION=10 (seconds) CONNECTIONS=4 THREADS=1 (client
#   runtime threads, like wrk -t1); LOOKOUT_BIN=path skips the release build; KEEP_WORK=1
#   keeps the temporary directory (configurations, logs, outboxes).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-4}
THREADS=${THREADS:-1}
RESULTS="$ROOT/bench/results/ingest-$(date +%F).md"
PAYLOADS=("$ROOT/examples/payloads/firing.json" "$ROOT/examples/payloads/resolved.json")
mkdir -p "$ROOT/bench/results"


# --- peers ----------------------------------------------------------------------------
need curl:curl sqlite3:sqlite3

# --- builds ---------------------------------------------------------------------------
build_lookout
log "building bench/ingest-load (release)"
cargo build --release --quiet --manifest-path "$ROOT/bench/ingest-load/Cargo.toml" \
    --target-dir "$ROOT/bench/ingest-load/target"  # its own, whatever CARGO_TARGET_DIR says
LOAD_BIN="$ROOT/bench/ingest-load/target/release/ingest-load"
BARE_BIN="$ROOT/bench/ingest-load/target/release/bare-webhook"

# --- helpers --------------------------------------------------------------------------
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Runs the load client against $2 and stores its key=value output under the run name $1.
declare -A OUT
load() {
    local name=$1 url=$2 out
    out=$("$LOAD_BIN" --connections "$CONNECTIONS" --duration "$DURATION" --threads "$THREADS" \
        --run "$name-$$-$RANDOM" "$url" "${PAYLOADS[@]}")
    while IFS='=' read -r key value; do OUT[$name/$key]=$value; done <<<"$out"
    ((${OUT[$name/requests]:-0} > 0)) || die "$name: no request completed: $out"
}
val() { echo "${OUT[$1/$2]:-}"; }

# --- lookout runs ---------------------------------------------------------------------
# Closed port for the undeliverable channel: connect refused at once, nothing listens.
CLOSED_PORT=$(free_port)
cat >"$WORK/console.yaml" <<'EOF'
host: { enabled: false }
channels:
  sink: { type: console }
receivers:
  bench: { channels: [sink] }
EOF
cat >"$WORK/undeliverable.yaml" <<EOF
host: { enabled: false }
channels:
  sink:
    type: dingtalk
    url: http://127.0.0.1:$CLOSED_PORT/robot/send?access_token=bench
    rate_limit: 1/h
    retry: { initial: 1h, max: 1h }
receivers:
  bench: { channels: [sink] }
EOF

VARIANTS=(console undeliverable)
declare -A CPU_PER RSS STORED DELIVERIES JOURNAL
for variant in "${VARIANTS[@]}"; do
    "$LOOKOUT_BIN" check-config "$WORK/$variant.yaml" >/dev/null || die "bad $variant.yaml"
    state="$WORK/state-$variant"
    mkdir -p "$state"
    port=$(free_port)
    log "lookout ($variant channel) on :$port: $CONNECTIONS connections, ${DURATION} s"
    "$LOOKOUT_BIN" --config "$WORK/$variant.yaml" --listen "127.0.0.1:$port" \
        --state-dir "$state" --log.level warn >/dev/null 2>"$WORK/lookout-$variant.log" &
    pid=$!
    PIDS+=("$pid")
    wait_ready "$port" /-/ready lookout
    before=$(cpu_ticks "$pid")
    load "lookout/$variant" "http://127.0.0.1:$port/alertmanager/bench"
    after=$(cpu_ticks "$pid")
    RSS[$variant]=$(rss_mb "$pid")
    CPU_PER[$variant]=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$(val "lookout/$variant" requests)" \
        'BEGIN { printf "%.3f", t * 1000 / hz / n }')
    # Durability check: no graceful shutdown, the outbox must already hold every 200.
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    db="$state/outbox.db"
    JOURNAL[$variant]=$(sqlite3 "$db" 'PRAGMA journal_mode')
    STORED[$variant]=$(sqlite3 "$db" 'SELECT COUNT(*) FROM notifications')
    DELIVERIES[$variant]=$(sqlite3 "$db" "SELECT group_concat(state || ' ' || n, ', ') FROM
        (SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state ORDER BY state)")
done

# --- bare reference -------------------------------------------------------------------
port=$(free_port)
log "bare-webhook on :$port: $CONNECTIONS connections, ${DURATION} s"
"$BARE_BIN" "$port" >"$WORK/bare.log" 2>&1 &
pid=$!
PIDS+=("$pid")
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.02; done
before=$(cpu_ticks "$pid")
load bare "http://127.0.0.1:$port/alertmanager/bench"
after=$(cpu_ticks "$pid")
CPU_PER[bare]=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$(val bare requests)" \
    'BEGIN { printf "%.3f", t * 1000 / hz / n }')
RSS[bare]=$(rss_mb "$pid")

# --- report ---------------------------------------------------------------------------
verdict() { # lookout run → "ok" or what is wrong with the outbox count
    local run=lookout/$1
    local accepted stored
    accepted=$(val "$run" accepted) stored=${STORED[$1]}
    if [[ $stored == "$accepted" && $(val "$run" duplicate) == 0 && $(val "$run" non_200) == 0 ]]; then
        echo "ok: $stored rows = $accepted accepted"
    else
        echo "MISMATCH: $stored rows, $accepted accepted, $(val "$run" duplicate) duplicate, $(val "$run" non_200) non-200"
    fi
}
FAILED=0
for variant in "${VARIANTS[@]}"; do
    [[ $(verdict "$variant") == ok:* ]] || FAILED=1
done
{
    echo "# Webhook ingest benchmark — $(date '+%F %T %Z')"
    echo
    echo "Machine: $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);" \
        "lookout $("$LOOKOUT_BIN" --version 2>/dev/null | head -1 || echo '?'); state dir on" \
        "$(df -T "$WORK" | awk 'NR == 2 { print $2 }')."
    echo "Load: \`bench/ingest-load --connections $CONNECTIONS --duration $DURATION --threads $THREADS\`," \
        "the payloads of \`examples/payloads\` (firing, resolved) in turn, each request a distinct" \
        "notification. lookout: fresh outbox per run, normal settings (WAL, synchronous=FULL, group" \
        "commit); \`console\` = console channel to /dev/null (delivers alongside), \`undeliverable\` =" \
        "DingTalk channel at a closed port, rate_limit 1/h, retry 1h (never delivers; the backlog grows)." \
        "bare = hyper handler reading the body and answering 200 without parsing or persisting." \
        "CPU per notification = server utime+stime ÷ requests."
    echo
    echo "| server | accepted/s | p50 ms | p90 ms | p99 ms | max ms | non-200 | CPU ms/notification | RSS after MB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for run in lookout/console lookout/undeliverable bare; do
        key=${run#lookout/}
        echo "| ${run/\// (}$([[ $run == lookout/* ]] && echo ')') | $(val "$run" accepted_per_s) |" \
            "$(val "$run" p50_ms) | $(val "$run" p90_ms) | $(val "$run" p99_ms) | $(val "$run" max_ms) |" \
            "$(($(val "$run" non_200) + $(val "$run" errors))) | ${CPU_PER[$key]} | ${RSS[$key]} |"
    done
    echo
    echo "| | console | undeliverable | target |"
    echo "|---|---:|---:|---|"
    echo "| lookout accepted/s | $(val lookout/console accepted_per_s) | $(val lookout/undeliverable accepted_per_s) | ≥ 2,000 |"
    echo "| lookout p99 ms | $(val lookout/console p99_ms) | $(val lookout/undeliverable p99_ms) | < 20 |"
    echo "| lookout ÷ bare, accepted/s | $(ratio "$(val lookout/console accepted_per_s)" "$(val bare accepted_per_s)") |" \
        "$(ratio "$(val lookout/undeliverable accepted_per_s)" "$(val bare accepted_per_s)") | |"
    echo "| outbox after SIGKILL | $(verdict console) | $(verdict undeliverable) | every 200 stored |"
    echo "| deliveries rows | ${DELIVERIES[console]} | ${DELIVERIES[undeliverable]} | |"
    echo "| journal_mode | ${JOURNAL[console]} | ${JOURNAL[undeliverable]} | wal |"
    for run in lookout/console lookout/undeliverable bare; do
        failure=$(val "$run" first_failure)
        [[ -n $failure ]] && echo && echo "First failure of $run: \`$failure\`"
    done
    true
} | tee "$RESULTS"
log "wrote $RESULTS"
((FAILED == 0)) || die "the outbox does not hold exactly the accepted notifications"
