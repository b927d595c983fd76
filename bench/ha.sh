#!/usr/bin/env bash
# Relay high availability benchmark (issue 12): durable webhook ingest of lookout with
# its outbox shared on PostgreSQL, by replica count (1, 2, 3), against the SQLite outbox
# of one process, side by side in one run (this 2-core machine is noisy).
#
# Every run gets the same total load: CONNECTIONS keep-alive connections in all, split
# evenly over the replicas (one bench/ingest-load client per replica, all at once),
# posting the real payloads of examples/payloads, each request a distinct notification.
# Every replica has a `console` channel (stdout to /dev/null), so delivery runs alongside
# ingest and claims rows from the shared outbox the whole time.
#
# After each run every replica is killed with SIGKILL and the outbox is counted: it must
# hold exactly the notifications that were answered "accepted" (commit before 2xx).
# PostgreSQL runs with its defaults (synchronous_commit on: every accept is on disk).
#
# Usage: bench/ha.sh   env: DURATION=10 CONNECTIONS=6 REPLICAS="1 2 3" LOOKOUT_BIN=…
#   PG_HOST PG_PORT PG_ROOT_USER (a superuser; peer auth as `postgres` when run as root)
#   KEEP_WORK=1 keeps the temporary directory.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-6}
REPLICAS=${REPLICAS:-1 2 3}
RESULTS="$ROOT/bench/results/ha-$(date +%F).md"
PAYLOADS=("$ROOT/examples/payloads/firing.json" "$ROOT/examples/payloads/resolved.json")
mkdir -p "$ROOT/bench/results"

need curl:curl sqlite3:sqlite3 psql:postgresql-client
postgres_root
build_lookout
build_ingest_load

WORK=$(mktemp -d)
DB=lkb_ha
PASSWORD="bench-$RANDOM$RANDOM"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    psqlc -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $DB" 2>/dev/null || true
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

fresh_database() {
    psqlc -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $DB" \
        -c "CREATE ROLE $DB LOGIN PASSWORD '$PASSWORD'" -c "CREATE DATABASE $DB OWNER $DB"
}

cat >"$WORK/sqlite.yaml" <<'EOF'
host: { enabled: false }
channels:
  sink: { type: console }
receivers:
  bench: { channels: [sink] }
EOF
cat >"$WORK/shared.yaml" <<EOF
host: { enabled: false }
relay:
  outbox: postgres://$DB@$PG_HOST:$PG_PORT/$DB?sslmode=disable
  outbox_password: \${BENCH_OUTBOX_PASSWORD}
  lease: 30s
channels:
  sink: { type: console }
receivers:
  bench: { channels: [sink] }
EOF
export BENCH_OUTBOX_PASSWORD=$PASSWORD

# Starts N replicas of config $2 (run name $1); sets PORTS and RUN_PIDS.
start_replicas() {
    local name=$1 config=$2 n=$3 i port state
    PORTS=() RUN_PIDS=()
    for ((i = 0; i < n; i++)); do
        port=$(free_port)
        state="$WORK/state-$name-$i"
        mkdir -p "$state"
        "$LOOKOUT_BIN" --config "$config" --listen "127.0.0.1:$port" --state-dir "$state" \
            --log.level warn >/dev/null 2>"$WORK/$name-$i.log" &
        PIDS+=($!) RUN_PIDS+=($!) PORTS+=("$port")
    done
    for ((i = 0; i < n; i++)); do wait_ready "${PORTS[$i]}" /-/ready "$name-$i" 60; done
}

# Loads every replica at once, CONNECTIONS split evenly; sums the clients' outputs.
declare -A OUT
load_all() {
    local name=$1 n=${#PORTS[@]} i per clients=()
    per=$(((CONNECTIONS + n - 1) / n))
    for ((i = 0; i < n; i++)); do
        "$LOAD_BIN" --connections "$per" --duration "$DURATION" --threads 1 \
            --run "$name-$i-$$-$RANDOM" "http://127.0.0.1:${PORTS[$i]}/alertmanager/bench" \
            "${PAYLOADS[@]}" >"$WORK/$name-load-$i.out" &
        clients+=($!)
    done
    for pid in "${clients[@]}"; do wait "$pid" || die "$name: a load client failed"; done
    sum_clients "$n" "$name"
}
sum_clients() { # sums accepted, non_200 + errors, accepted/s; takes the worst p50/p99
    local n=$1 name=$2 i key value
    OUT[$name/accepted]=0 OUT[$name/requests]=0 OUT[$name/failed]=0 OUT[$name/rate]=0
    OUT[$name/p50]=0 OUT[$name/p99]=0
    for ((i = 0; i < n; i++)); do
        while IFS='=' read -r key value; do
            case $key in
            accepted) OUT[$name/accepted]=$((OUT[$name/accepted] + value)) ;;
            non_200 | errors) OUT[$name/failed]=$((OUT[$name/failed] + value)) ;;
            accepted_per_s) OUT[$name/rate]=$(awk -v a="${OUT[$name/rate]}" -v b="$value" 'BEGIN { printf "%.0f", a + b }') ;;
            p50_ms) OUT[$name/p50]=$(awk -v a="${OUT[$name/p50]}" -v b="$value" 'BEGIN { print (b > a ? b : a) }') ;;
            p99_ms) OUT[$name/p99]=$(awk -v a="${OUT[$name/p99]}" -v b="$value" 'BEGIN { print (b > a ? b : a) }') ;;
            esac
        done <"$WORK/$name-load-$i.out"
    done
}

declare -A STORED CPU RSS
kill_all() {
    local pid
    for pid in "${RUN_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${RUN_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
cpu_sum() { local total=0 pid; for pid in "${RUN_PIDS[@]}"; do total=$((total + $(cpu_ticks "$pid"))); done; echo "$total"; }
rss_sum() { local pid; for pid in "${RUN_PIDS[@]}"; do rss_mb "$pid"; echo; done | awk '{ s += $1 } END { printf "%.1f", s }'; }

# --- SQLite, one process ------------------------------------------------------------
log "sqlite: 1 process, $CONNECTIONS connections, ${DURATION} s"
start_replicas sqlite "$WORK/sqlite.yaml" 1
before=$(cpu_sum)
load_all sqlite
CPU[sqlite]=$(awk -v t=$(($(cpu_sum) - before)) -v hz="$CLK_TCK" -v n="${OUT[sqlite/accepted]}" 'BEGIN { printf "%.3f", t * 1000 / hz / n }')
RSS[sqlite]=$(rss_sum)
kill_all
STORED[sqlite]=$(sqlite3 "$WORK/state-sqlite-0/outbox.db" 'SELECT COUNT(*) FROM notifications')

# --- PostgreSQL, N replicas ---------------------------------------------------------
for n in $REPLICAS; do
    name="pg$n"
    fresh_database
    log "postgres: $n replica(s), $CONNECTIONS connections in all, ${DURATION} s"
    start_replicas "$name" "$WORK/shared.yaml" "$n"
    before=$(cpu_sum)
    load_all "$name"
    CPU[$name]=$(awk -v t=$(($(cpu_sum) - before)) -v hz="$CLK_TCK" -v n="${OUT[$name/accepted]}" 'BEGIN { printf "%.3f", t * 1000 / hz / n }')
    RSS[$name]=$(rss_sum)
    kill_all
    STORED[$name]=$(psqlc -d "$DB" -c 'SELECT COUNT(*) FROM lookout_notifications')
    OUT[$name/delivered]=$(psqlc -d "$DB" -c "SELECT COUNT(*) FROM lookout_deliveries WHERE state = 'delivered'")
done

# --- report ---------------------------------------------------------------------------
FAILED=0
declare -A VERDICT
for name in sqlite $(for n in $REPLICAS; do echo "pg$n"; done); do
    if [[ ${STORED[$name]} == "${OUT[$name/accepted]}" && ${OUT[$name/failed]} == 0 ]]; then
        VERDICT[$name]="ok: ${STORED[$name]} = accepted"
    else
        FAILED=1
        VERDICT[$name]="MISMATCH: ${STORED[$name]} stored, ${OUT[$name/accepted]} accepted, ${OUT[$name/failed]} failed"
    fi
done
{
    echo "# Relay HA ingest benchmark — $(date '+%F %T %Z')"
    echo
    echo "Machine: $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);" \
        "PostgreSQL $(psqlc -d postgres -c 'SHOW server_version') on the same machine (defaults, synchronous_commit" \
        "$(psqlc -d postgres -c 'SHOW synchronous_commit'))."
    echo "Load: $CONNECTIONS keep-alive connections in all, split evenly over the replicas (one" \
        "\`bench/ingest-load\` per replica, all at once), ${DURATION} s, the payloads of" \
        "\`examples/payloads\` in turn, each request a distinct notification. Every replica delivers" \
        "alongside to a console channel. CPU = lookout processes' utime+stime ÷ accepted (the database's" \
        "own CPU is not counted). After each run every replica is killed with SIGKILL and the outbox counted."
    echo
    echo "| outbox | replicas | accepted/s | ÷ SQLite | worst p50 ms | worst p99 ms | lookout CPU ms/notification | RSS MB (all) | outbox after SIGKILL |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    echo "| SQLite (state_dir) | 1 | ${OUT[sqlite/rate]} | 1 | ${OUT[sqlite/p50]} | ${OUT[sqlite/p99]} | ${CPU[sqlite]} | ${RSS[sqlite]} | ${VERDICT[sqlite]} |"
    for n in $REPLICAS; do
        name="pg$n"
        echo "| PostgreSQL (shared) | $n | ${OUT[$name/rate]} | $(ratio "${OUT[$name/rate]}" "${OUT[sqlite/rate]}") |" \
            "${OUT[$name/p50]} | ${OUT[$name/p99]} | ${CPU[$name]} | ${RSS[$name]} | ${VERDICT[$name]} |"
    done
} | tee "$RESULTS"
log "wrote $RESULTS"
((FAILED == 0)) || die "an outbox does not hold exactly the accepted notifications"
