#!/usr/bin/env bash
# lookout's `mysql` pack beside Debian's prometheus-mysqld-exporter on the same MariaDB,
# in one run (SPEC §6.5, issue 14): series served, scrape throughput and latency (wrk with
# Prometheus' Accept and gzip), CPU per scrape, RSS idle and after load, and the database
# statements each one runs per minute idle, at one Prometheus (a scrape every 15 s) and
# under wrk. Statements come from MariaDB's information_schema.USER_STATISTICS (one user
# per exporter; `userstat` is switched on for the run and restored after).
#
# Usage: bench/packs.sh
#   env: DURATION=10s CONNECTIONS=4 WINDOW=30 (seconds per statement-count window)
#        MYSQL_HOST=127.0.0.1 MYSQL_PORT=3306 MYSQL_ROOT_USER=root MYSQL_ROOT_PASSWORD=
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

need wrk:wrk curl:curl mysql:mariadb-client prometheus-mysqld-exporter:prometheus-mysqld-exporter
mariadb_root
build_lookout

WORK=$(mktemp -d)
PIDS=()
USERSTAT_BEFORE=''
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -n $USERSTAT_BEFORE ]] && sql -e "SET GLOBAL userstat = $USERSTAT_BEFORE"
    sql -e "DROP USER IF EXISTS 'lkb_pk_lookout'@'%'; DROP USER IF EXISTS 'lkb_pk_mysqld'@'%'" 2>/dev/null || true
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PASSWORD="bench-$RANDOM$RANDOM"
for user in lkb_pk_lookout lkb_pk_mysqld; do
    sql -e "DROP USER IF EXISTS '$user'@'%'; CREATE USER '$user'@'%' IDENTIFIED BY '$PASSWORD';
            GRANT PROCESS, REPLICATION CLIENT ON *.* TO '$user'@'%'"
done
USERSTAT_BEFORE=$(sql -e 'SELECT @@GLOBAL.userstat')
sql -e 'SET GLOBAL userstat = 1'
# Statements one user has run so far (USER_STATISTICS, cumulative).
statements() {
    local n
    n=$(sql -e "SELECT SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS FROM information_schema.USER_STATISTICS WHERE USER = '$1'")
    echo "${n:-0}"
}

declare -A PORT PID USER_OF
PORT[lookout]=$(free_port)
PORT[mysqld_exporter]=$(free_port)
USER_OF[lookout]=lkb_pk_lookout
USER_OF[mysqld_exporter]=lkb_pk_mysqld
cat >"$WORK/lookout.yaml" <<YAML
host: { enabled: false }
databases:
  db: { url: 'mysql://lkb_pk_lookout@$MYSQL_HOST:$MYSQL_PORT/', password: '$PASSWORD', collect: [mysql], collect_interval: 15s }
YAML
mkdir -p "$WORK/state"
"$LOOKOUT_BIN" --config "$WORK/lookout.yaml" --listen "127.0.0.1:${PORT[lookout]}" --state-dir "$WORK/state" \
    --log.level warn >"$WORK/lookout.log" 2>&1 &
PID[lookout]=$!
PIDS+=("${PID[lookout]}")
DATA_SOURCE_NAME="lkb_pk_mysqld:$PASSWORD@($MYSQL_HOST:$MYSQL_PORT)/" prometheus-mysqld-exporter \
    --web.listen-address="127.0.0.1:${PORT[mysqld_exporter]}" >"$WORK/mysqld_exporter.log" 2>&1 &
PID[mysqld_exporter]=$!
PIDS+=("${PID[mysqld_exporter]}")
for name in lookout mysqld_exporter; do wait_ready "${PORT[$name]}" /metrics "$name"; done
deadline=$((SECONDS + 30))
until curl -sf "http://127.0.0.1:${PORT[lookout]}/metrics" | grep -q '^mysql_up 1'; do
    ((SECONDS < deadline)) || die "lookout's mysql pack did not report mysql_up 1 ($(tail -n 3 "$WORK/lookout.log"))"
    sleep 0.2
done
sleep 2

declare -A SERIES RSS_IDLE P50 P99 RPS CPU RSS_AFTER PER_MIN_IDLE PER_MIN_PROM PER_MIN_LOAD PER_SCRAPE
for name in lookout mysqld_exporter; do
    url="http://127.0.0.1:${PORT[$name]}/metrics"
    SERIES[$name]=$(curl -sf -H 'Accept: text/plain' "$url" | grep -c '^mysql_' || true)
    RSS_IDLE[$name]=$(rss_mb "${PID[$name]}")
done

# Statements per minute: idle (nobody scrapes), then one Prometheus (a scrape every 15 s).
per_minute() { awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN { printf "%.0f", (b - a) * 60 / s }'; }
log "statements idle, ${WINDOW} s"
declare -A BEFORE
for name in lookout mysqld_exporter; do BEFORE[$name]=$(statements "${USER_OF[$name]}"); done
sleep "$WINDOW"
for name in lookout mysqld_exporter; do
    PER_MIN_IDLE[$name]=$(per_minute "${BEFORE[$name]}" "$(statements "${USER_OF[$name]}")" "$WINDOW")
done
log "statements at one scrape every 15 s, 60 s"
for name in lookout mysqld_exporter; do BEFORE[$name]=$(statements "${USER_OF[$name]}"); done
for _ in 1 2 3 4; do
    for name in lookout mysqld_exporter; do
        curl -sf -o /dev/null -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' "http://127.0.0.1:${PORT[$name]}/metrics"
    done
    sleep 15
done
for name in lookout mysqld_exporter; do
    PER_MIN_PROM[$name]=$(per_minute "${BEFORE[$name]}" "$(statements "${USER_OF[$name]}")" 60)
done

for name in lookout mysqld_exporter; do
    log "$name: wrk $DURATION"
    BEFORE[$name]=$(statements "${USER_OF[$name]}")
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
    PER_MIN_LOAD[$name]=$(per_minute "${BEFORE[$name]}" "$(statements "${USER_OF[$name]}")" "$((elapsed > 0 ? elapsed : 1))")
    PER_SCRAPE[$name]=$(awk -v a="${BEFORE[$name]}" -v b="$(statements "${USER_OF[$name]}")" -v n="$requests" \
        'BEGIN { if (n > 0) printf "%.4f", (b - a) / n; else print "n/a" }')
    RSS_AFTER[$name]=$(rss_mb "${PID[$name]}")
done

{
    echo "# Database packs benchmark — $(date -u '+%F %T') UTC"
    echo
    echo "Machine: $(nproc) cores; lookout $("$LOOKOUT_BIN" --version 2>/dev/null | head -n 1) (\`collect: [mysql]\`, every 15 s);" \
        "prometheus-mysqld-exporter $(dpkg-query -W -f='${Version}' prometheus-mysqld-exporter 2>/dev/null || echo '?') (default collectors);" \
        "MariaDB $(sql -e 'SELECT VERSION()')."
    echo
    echo "Load: \`wrk -t1 -c$CONNECTIONS -d$DURATION\` with Prometheus 2's Accept and gzip, one exporter at a time." \
        "CPU per scrape = utime+stime of the exporter ÷ requests. Statements from USER_STATISTICS (each exporter its own user)."
    echo
    echo "| exporter | mysql_* series | scrapes/s | p50 ms | p99 ms | CPU ms per scrape | RSS idle MB | RSS after load MB | statements/min idle | at one scrape per 15 s | under wrk | statements per scrape under wrk |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for name in lookout mysqld_exporter; do
        echo "| $name | ${SERIES[$name]} | ${RPS[$name]} | ${P50[$name]} | ${P99[$name]} | ${CPU[$name]} | ${RSS_IDLE[$name]} | ${RSS_AFTER[$name]} | ${PER_MIN_IDLE[$name]} | ${PER_MIN_PROM[$name]} | ${PER_MIN_LOAD[$name]} | ${PER_SCRAPE[$name]} |"
    done
    echo
    echo "Ratios lookout ÷ mysqld_exporter: throughput $(ratio "${RPS[lookout]}" "${RPS[mysqld_exporter]}")," \
        "CPU per scrape $(ratio "${CPU[lookout]}" "${CPU[mysqld_exporter]}"), RSS after load $(ratio "${RSS_AFTER[lookout]}" "${RSS_AFTER[mysqld_exporter]}")," \
        "statements per minute under load $(ratio "${PER_MIN_LOAD[lookout]}" "${PER_MIN_LOAD[mysqld_exporter]}")."
    echo
    echo "lookout's statements do not depend on scrapes: each pack run reads status, variables and replica status," \
        "each statement after the session reset every lookout query gets (read-only, statement timeout)."
} | tee "$RESULTS"
log "written to $RESULTS"
