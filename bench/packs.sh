#!/usr/bin/env bash
# lookout with both database packs beside Debian's prometheus-mysqld-exporter and
# prometheus-postgres-exporter on the same MariaDB and PostgreSQL, in one run (SPEC §6.5,
# issue 14): series served, scrape throughput and latency (wrk with Prometheus' Accept
# and gzip), CPU per scrape, RSS idle and after load, and the statements each one runs
# per minute on each server idle, at one Prometheus (a scrape every 15 s) and under wrk.
#
# Statements: MariaDB's information_schema.USER_STATISTICS (one user per exporter;
# `userstat` is switched on for the run and restored after); PostgreSQL's transactions in
# pg_stat_database of a database per exporter (each connects to its own, and every
# statement of either is one transaction).
#
# Usage: bench/packs.sh
#   env: DURATION=10s CONNECTIONS=4 WINDOW=30 (seconds per statement-count window)
#        MYSQL_HOST=127.0.0.1 MYSQL_PORT=3306 MYSQL_ROOT_USER=root MYSQL_ROOT_PASSWORD=
#        PG_HOST=127.0.0.1 PG_PORT=5432 PG_ROOT_USER=postgres
#        LOOKOUT_BIN=… KEEP_WORK=1
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-4}
WINDOW=${WINDOW:-30}
ACCEPT='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
RESULTS="$ROOT/bench/results/packs-$(date +%F).md"
mkdir -p "$ROOT/bench/results"

need wrk:wrk curl:curl mysql:mariadb-client psql:postgresql-client \
    prometheus-mysqld-exporter:prometheus-mysqld-exporter \
    prometheus-postgres-exporter:prometheus-postgres-exporter
mariadb_root
postgres_root
build_lookout

EXPORTERS=(lookout mysqld_exporter postgres_exporter)
WORK=$(mktemp -d)
PIDS=()
USERSTAT_BEFORE=''
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -n $USERSTAT_BEFORE ]] && sql -e "SET GLOBAL userstat = $USERSTAT_BEFORE"
    sql -e "DROP USER IF EXISTS 'lkb_pk_lookout'@'%'; DROP USER IF EXISTS 'lkb_pk_mysqld'@'%'" 2>/dev/null || true
    for name in lkb_pk_lookout lkb_pk_pgexp; do
        psqlc -d postgres -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "DROP ROLE IF EXISTS $name" 2>/dev/null || true
    done
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PASSWORD="bench-$RANDOM$RANDOM"
for user in lkb_pk_lookout lkb_pk_mysqld; do
    sql -e "DROP USER IF EXISTS '$user'@'%'; CREATE USER '$user'@'%' IDENTIFIED BY '$PASSWORD';
            GRANT PROCESS, REPLICATION CLIENT ON *.* TO '$user'@'%'"
done
# One role and one database per exporter: the database's transactions are its statements.
for name in lkb_pk_lookout lkb_pk_pgexp; do
    psqlc -d postgres -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "DROP ROLE IF EXISTS $name" \
        -c "CREATE ROLE $name LOGIN PASSWORD '$PASSWORD'" -c "GRANT pg_read_all_stats TO $name" \
        -c "CREATE DATABASE $name OWNER $name"
done
USERSTAT_BEFORE=$(sql -e 'SELECT @@GLOBAL.userstat')
sql -e 'SET GLOBAL userstat = 1'

declare -A MYSQL_USER PG_DB
MYSQL_USER[lookout]=lkb_pk_lookout
MYSQL_USER[mysqld_exporter]=lkb_pk_mysqld
PG_DB[lookout]=lkb_pk_lookout
PG_DB[postgres_exporter]=lkb_pk_pgexp
# Statements one exporter has run so far on a server (cumulative; 0 if it never connects).
statements() {
    local n=''
    case $2 in
    mysql)
        [[ -n ${MYSQL_USER[$1]:-} ]] &&
            n=$(sql -e "SELECT SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS FROM information_schema.USER_STATISTICS WHERE USER = '${MYSQL_USER[$1]}'")
        ;;
    pg)
        [[ -n ${PG_DB[$1]:-} ]] &&
            n=$(psqlc -d postgres -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '${PG_DB[$1]}'")
        ;;
    esac
    echo "${n:-0}"
}

declare -A PORT PID
for name in "${EXPORTERS[@]}"; do PORT[$name]=$(free_port); done
cat >"$WORK/lookout.yaml" <<YAML
host: { enabled: false }
databases:
  mariadb: { url: 'mysql://lkb_pk_lookout@$MYSQL_HOST:$MYSQL_PORT/', password: '$PASSWORD', collect: [mysql], collect_interval: 15s }
  postgres: { url: 'postgres://lkb_pk_lookout@$PG_HOST:$PG_PORT/lkb_pk_lookout', password: '$PASSWORD', collect: [postgres], collect_interval: 15s }
YAML
mkdir -p "$WORK/state"
"$LOOKOUT_BIN" --config "$WORK/lookout.yaml" --listen "127.0.0.1:${PORT[lookout]}" --state-dir "$WORK/state" \
    --log.level warn >"$WORK/lookout.log" 2>&1 &
PID[lookout]=$!
DATA_SOURCE_NAME="lkb_pk_mysqld:$PASSWORD@($MYSQL_HOST:$MYSQL_PORT)/" prometheus-mysqld-exporter \
    --web.listen-address="127.0.0.1:${PORT[mysqld_exporter]}" >"$WORK/mysqld_exporter.log" 2>&1 &
PID[mysqld_exporter]=$!
DATA_SOURCE_NAME="postgresql://lkb_pk_pgexp:$PASSWORD@$PG_HOST:$PG_PORT/lkb_pk_pgexp?sslmode=disable" \
    prometheus-postgres-exporter --web.listen-address="127.0.0.1:${PORT[postgres_exporter]}" \
    >"$WORK/postgres_exporter.log" 2>&1 &
PID[postgres_exporter]=$!
for name in "${EXPORTERS[@]}"; do PIDS+=("${PID[$name]}"); done
for name in "${EXPORTERS[@]}"; do wait_ready "${PORT[$name]}" /metrics "$name"; done
deadline=$((SECONDS + 30))
# One fetch, then grep (grep -q on a pipe would end curl early: SIGPIPE under pipefail).
ups() { curl -sf "http://127.0.0.1:${PORT[lookout]}/metrics" | grep -E '^(mysql|pg)_up ' || true; }
until [[ $(ups) == *'mysql_up 1'*'pg_up 1'* ]]; do
    ((SECONDS < deadline)) || die "lookout's packs did not report mysql_up 1 and pg_up 1 ($(tail -n 3 "$WORK/lookout.log"))"
    sleep 0.2
done
# The exporters connect on their first scrape.
for name in mysqld_exporter postgres_exporter; do curl -sf -o /dev/null "http://127.0.0.1:${PORT[$name]}/metrics"; done
sleep 2

declare -A SERIES RSS_IDLE P50 P99 RPS CPU RSS_AFTER BEFORE
declare -A MIN_IDLE MIN_PROM MIN_LOAD # key: exporter/server
for name in "${EXPORTERS[@]}"; do
    SERIES[$name]=$(curl -sf -H 'Accept: text/plain' "http://127.0.0.1:${PORT[$name]}/metrics" | grep -cE '^(mysql|pg)_' || true)
    RSS_IDLE[$name]=$(rss_mb "${PID[$name]}")
done

per_minute() { awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN { printf "%.0f", (b - a) * 60 / s }'; }
mark() {
    local name db
    for name in "${EXPORTERS[@]}"; do for db in mysql pg; do BEFORE[$name/$db]=$(statements "$name" "$db"); done; done
}
# Sets $1[exporter/server] to statements per minute since `mark`, over $2 seconds.
since_mark() {
    local -n into=$1
    local name db
    for name in "${EXPORTERS[@]}"; do for db in mysql pg; do
        into[$name/$db]=$(per_minute "${BEFORE[$name/$db]}" "$(statements "$name" "$db")" "$2")
    done; done
}
log "statements idle, ${WINDOW} s"
mark
sleep "$WINDOW"
since_mark MIN_IDLE "$WINDOW"
log "statements at one scrape every 15 s, 60 s"
mark
for _ in 1 2 3 4; do
    for name in "${EXPORTERS[@]}"; do
        curl -sf -o /dev/null -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' "http://127.0.0.1:${PORT[$name]}/metrics"
    done
    sleep 15
done
since_mark MIN_PROM 60

declare -A LOAD_ONE
for name in "${EXPORTERS[@]}"; do
    log "$name: wrk $DURATION"
    mark
    before=$(cpu_ticks "${PID[$name]}")
    started=$SECONDS
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency --timeout 10s \
        -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' "http://127.0.0.1:${PORT[$name]}/metrics")
    elapsed=$((SECONDS - started))
    after=$(cpu_ticks "${PID[$name]}")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    P50[$name]=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    P99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    RPS[$name]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
    CPU[$name]=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" \
        'BEGIN { if (n > 0) printf "%.3f", t * 1000 / hz / n; else print "n/a" }')
    since_mark LOAD_ONE "$((elapsed > 0 ? elapsed : 1))"
    for db in mysql pg; do MIN_LOAD[$name/$db]=${LOAD_ONE[$name/$db]}; done
    RSS_AFTER[$name]=$(rss_mb "${PID[$name]}")
done

# The two exporters together, as one Prometheus scrapes both: series, CPU, RSS and
# statements add up; a scrape of both takes the time of one of each.
both() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.'"${3:-1}"'f", a + b }'; }
SERIES[both]=$((SERIES[mysqld_exporter] + SERIES[postgres_exporter]))
RPS[both]=$(awk -v a="${RPS[mysqld_exporter]}" -v b="${RPS[postgres_exporter]}" 'BEGIN { printf "%.0f", 1 / (1 / a + 1 / b) }')
CPU[both]=$(both "${CPU[mysqld_exporter]}" "${CPU[postgres_exporter]}" 3)
RSS_IDLE[both]=$(both "${RSS_IDLE[mysqld_exporter]}" "${RSS_IDLE[postgres_exporter]}")
RSS_AFTER[both]=$(both "${RSS_AFTER[mysqld_exporter]}" "${RSS_AFTER[postgres_exporter]}")
P50[both]='–'
P99[both]='–'
for db in mysql pg; do
    MIN_IDLE[both/$db]=$((MIN_IDLE[mysqld_exporter/$db] + MIN_IDLE[postgres_exporter/$db]))
    MIN_PROM[both/$db]=$((MIN_PROM[mysqld_exporter/$db] + MIN_PROM[postgres_exporter/$db]))
    MIN_LOAD[both/$db]=$((MIN_LOAD[mysqld_exporter/$db] + MIN_LOAD[postgres_exporter/$db]))
done

{
    echo "# Database packs benchmark — $(date -u '+%F %T') UTC"
    echo
    echo "Machine: $(nproc) cores; lookout $("$LOOKOUT_BIN" --version 2>/dev/null | head -n 1) (\`collect: [mysql]\` and \`[postgres]\`, every 15 s);" \
        "prometheus-mysqld-exporter $(dpkg-query -W -f='${Version}' prometheus-mysqld-exporter 2>/dev/null || echo '?')" \
        "and prometheus-postgres-exporter $(dpkg-query -W -f='${Version}' prometheus-postgres-exporter 2>/dev/null || echo '?') (default collectors);" \
        "MariaDB $(sql -e 'SELECT VERSION()'); PostgreSQL $(psqlc -d postgres -c 'SHOW server_version')."
    echo
    echo "Load: \`wrk -t1 -c$CONNECTIONS -d$DURATION\` with Prometheus 2's Accept and gzip, one exporter at a time." \
        "CPU per scrape = utime+stime of the exporter ÷ requests. Statements per minute: MariaDB from USER_STATISTICS," \
        "PostgreSQL from the transactions of each exporter's own database. \"both exporters\": mysqld_exporter and" \
        "postgres_exporter together (series, CPU, RSS and statements added; scrapes/s of a pair, one of each)."
    echo
    echo "| exporter | mysql_* + pg_* series | scrapes/s | p50 ms | p99 ms | CPU ms per scrape | RSS idle MB | RSS after load MB | MariaDB statements/min idle | at one scrape per 15 s | under wrk | PostgreSQL statements/min idle | at one scrape per 15 s | under wrk |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for name in lookout mysqld_exporter postgres_exporter both; do
        label=$name
        [[ $name == both ]] && label='both exporters'
        echo "| $label | ${SERIES[$name]} | ${RPS[$name]} | ${P50[$name]} | ${P99[$name]} | ${CPU[$name]} | ${RSS_IDLE[$name]} | ${RSS_AFTER[$name]} | ${MIN_IDLE[$name/mysql]} | ${MIN_PROM[$name/mysql]} | ${MIN_LOAD[$name/mysql]} | ${MIN_IDLE[$name/pg]} | ${MIN_PROM[$name/pg]} | ${MIN_LOAD[$name/pg]} |"
    done
    echo
    echo "Ratios lookout ÷ both exporters: throughput $(ratio "${RPS[lookout]}" "${RPS[both]}")," \
        "CPU per scrape $(ratio "${CPU[lookout]}" "${CPU[both]}"), RSS after load $(ratio "${RSS_AFTER[lookout]}" "${RSS_AFTER[both]}")," \
        "statements per minute at one scrape per 15 s: MariaDB $(ratio "${MIN_PROM[lookout/mysql]}" "${MIN_PROM[both/mysql]}")," \
        "PostgreSQL $(ratio "${MIN_PROM[lookout/pg]}" "${MIN_PROM[both/pg]}")."
    echo
    echo "lookout's statements do not depend on scrapes: each pack run reads its server in the background every" \
        "\`collect_interval\` as one batch on one connection — after one session reset on MariaDB (2 statements)," \
        "in one read-only transaction on PostgreSQL."
} | tee "$RESULTS"
log "written to $RESULTS"
