#!/usr/bin/env bash
# How lookout's cost grows with work (SPEC §6.6, issue 16), in one run beside
# prometheus-sql-exporter (Debian's, installed here if missing):
#
#   1. One query returning 100,000 series on MariaDB, served by lookout and by
#      prometheus-sql-exporter: RSS idle after the first result, RSS after scrapes under
#      load, peak RSS, the first scrape after each new snapshot (lookout), scrape latency
#      under load (wrk, Prometheus' Accept and gzip).
#   2. Idle RSS: host metrics only; host metrics and the 15 queries of
#      examples/shop/lookout.yaml on MariaDB.
#   3. Sustained ingest: RSS after 50,000 and after 300,000 accepted notifications
#      (console channel to /dev/null).
#
# Usage: bench/scale.sh
#   env: SERIES=100000 INTERVAL=10 SNAPSHOTS=3 DURATION=10s CONNECTIONS=4 INGEST=300000
#        MYSQL_HOST=127.0.0.1 MYSQL_PORT=3306 MYSQL_ROOT_USER=root MYSQL_ROOT_PASSWORD=
#        LOOKOUT_BIN=… KEEP_WORK=1
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
SERIES=${SERIES:-100000}
INTERVAL=${INTERVAL:-10}
SNAPSHOTS=${SNAPSHOTS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-4}
INGEST=${INGEST:-300000}
# What Prometheus 2.x sends.
ACCEPT='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
DB=lookout_bench_scale
USER_=lkb_scale
RESULTS="$ROOT/bench/results/scale-$(date +%F).md"
mkdir -p "$ROOT/bench/results"

need wrk:wrk curl:curl mysql:mariadb-client prometheus-sql-exporter:prometheus-sql-exporter

mariadb_root

build_lookout
build_ingest_load

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    sql -e "DROP DATABASE IF EXISTS $DB; DROP USER IF EXISTS '$USER_'@'%'" 2>/dev/null || true
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
hwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# Seconds a scrape takes, with Prometheus' headers; fails on a non-200.
scrape_s() { curl -sf -o /dev/null -w '%{time_total}' -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' "$1"; }
ms() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }
# Latency figures of wrk with Prometheus' headers: "p50_ms p99_ms req_per_s".
# $2: connections (default $CONNECTIONS).
wrk_run() {
    local out
    out=$(wrk -t1 -c"${2:-$CONNECTIONS}" -d"$DURATION" --latency --timeout 10s \
        -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' "$1")
    printf '%s %s %s\n' \
        "$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")" \
        "$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")" \
        "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")"
}

PASSWORD="bench-$RANDOM$RANDOM"
sql -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4;
        DROP USER IF EXISTS '$USER_'@'%'; CREATE USER '$USER_'@'%' IDENTIFIED BY '$PASSWORD';
        GRANT SELECT ON $DB.* TO '$USER_'@'%'"

# ---- 1. one query, SERIES series ------------------------------------------------------
QUERY="SELECT CONCAT('w', seq) AS wid, ELT(1 + seq % 3, 'deposit', 'withdraw', 'transfer') AS kind, seq * 0.25 + (UNIX_TIMESTAMP() % 1000) AS balance FROM seq_1_to_$SERIES"
LOOKOUT_PORT=$(free_port)
cat >"$WORK/big.yaml" <<YAML
listen: 127.0.0.1:$LOOKOUT_PORT
state_dir: $WORK/state-big
host: { enabled: false }
databases:
  db: { url: 'mysql://$USER_@$MYSQL_HOST:$MYSQL_PORT/$DB', password: '$PASSWORD' }
queries:
  - name: wallets
    database: db
    interval: ${INTERVAL}s
    timeout: ${INTERVAL}s
    max_series: $((SERIES + 10))
    sql: "$QUERY"
    metrics:
      - { name: bench_wallet_balance, help: Balance per wallet., labels: [wid, kind], value: balance }
YAML
SE_PORT=$(free_port)
cat >"$WORK/sql_exporter.yml" <<YAML
jobs:
  - name: wallets
    interval: ${INTERVAL}s
    connections: ['mysql://$USER_:$PASSWORD@tcp($MYSQL_HOST:$MYSQL_PORT)/$DB']
    queries:
      - name: bench_wallet_balance
        help: Balance per wallet.
        labels: [wid, kind]
        values: [balance]
        query: "$QUERY"
YAML
"$LOOKOUT_BIN" check-config "$WORK/big.yaml" >/dev/null || die "the generated lookout configuration is invalid"

mkdir -p "$WORK/state-big"
log "lookout: one query, $SERIES series, every ${INTERVAL} s"
"$LOOKOUT_BIN" --config "$WORK/big.yaml" --log.level debug >"$WORK/lookout.log" 2>&1 &
LOOKOUT_PID=$!
PIDS+=("$LOOKOUT_PID")
wait_ready "$LOOKOUT_PORT" /-/ready lookout
runs() { grep -c '"query ran"\|query ran' "$WORK/lookout.log" || true; }
# Waits for the next snapshot (a "query ran" line), then times one scrape.
FIRST=()
deadline=$((SECONDS + (SNAPSHOTS + 2) * (INTERVAL + 30)))
seen=$(runs)
while ((${#FIRST[@]} < SNAPSHOTS)); do
    ((SECONDS < deadline)) || die "lookout: $SNAPSHOTS snapshots did not come ($(tail -n 3 "$WORK/lookout.log"))"
    now=$(runs)
    if ((now > seen)); then
        seen=$now
        FIRST+=("$(ms "$(scrape_s "http://127.0.0.1:$LOOKOUT_PORT/metrics")")")
        if ((${#FIRST[@]} == 1)); then
            sleep 1
            L_IDLE=$(rss_mb "$LOOKOUT_PID")
        fi
    fi
    sleep 0.02
done
curl -sf -H "Accept: $ACCEPT" "http://127.0.0.1:$LOOKOUT_PORT/metrics" -o "$WORK/lookout.txt"
L_SAMPLES=$(grep -c '^bench_wallet_balance{' "$WORK/lookout.txt" || true)
((L_SAMPLES == SERIES)) || die "lookout served $L_SAMPLES bench_wallet_balance samples, not $SERIES"
L_BYTES=$(stat -c %s "$WORK/lookout.txt")
log "lookout: wrk $DURATION, one connection (cached scrape latency)"
read -r L1_P50 L1_P99 L1_RPS < <(wrk_run "http://127.0.0.1:$LOOKOUT_PORT/metrics" 1)
log "lookout: wrk $DURATION, $CONNECTIONS connections"
read -r L_P50 L_P99 L_RPS < <(wrk_run "http://127.0.0.1:$LOOKOUT_PORT/metrics")
L_AFTER=$(rss_mb "$LOOKOUT_PID")
L_HWM=$(hwm_mb "$LOOKOUT_PID")
stop "$LOOKOUT_PID"

log "prometheus-sql-exporter: the same query"
LOGLEVEL=warn prometheus-sql-exporter -config.file "$WORK/sql_exporter.yml" \
    -web.listen-address "127.0.0.1:$SE_PORT" >"$WORK/sql_exporter.log" 2>&1 &
SE_PID=$!
PIDS+=("$SE_PID")
wait_ready "$SE_PORT" /metrics sql_exporter
deadline=$((SECONDS + INTERVAL + 60))
# It names the metric sql_<name> and adds col, database, driver, host, sql_job and user labels.
until curl -sf -H 'Accept: text/plain' "http://127.0.0.1:$SE_PORT/metrics" -o "$WORK/sql_exporter.txt" &&
    (($(grep -c '^sql_bench_wallet_balance{' "$WORK/sql_exporter.txt" || true) == SERIES)); do
    ((SECONDS < deadline)) || die "prometheus-sql-exporter did not serve $SERIES series ($(tail -n 3 "$WORK/sql_exporter.log"))"
    sleep 1
done
sleep 1
SE_IDLE=$(rss_mb "$SE_PID")
SE_FIRST=$(ms "$(scrape_s "http://127.0.0.1:$SE_PORT/metrics")")
SE_BYTES=$(stat -c %s "$WORK/sql_exporter.txt")
log "prometheus-sql-exporter: wrk $DURATION"
read -r SE_P50 SE_P99 SE_RPS < <(wrk_run "http://127.0.0.1:$SE_PORT/metrics")
SE_AFTER=$(rss_mb "$SE_PID")
SE_HWM=$(hwm_mb "$SE_PID")
stop "$SE_PID"

# ---- 2. idle footprint ----------------------------------------------------------------
# Starts lookout with config $1 (extra env in $2…), waits until ready and $READY_RUNS query
# runs, scrapes five times, idles 3 s; sets IDLE to its RSS.
idle_rss() {
    local config=$1 port pid
    shift
    port=$(free_port)
    mkdir -p "$WORK/state-idle"
    env "$@" "$LOOKOUT_BIN" --config "$config" --listen "127.0.0.1:$port" \
        --state-dir "$WORK/state-idle" --log.level warn >"$WORK/idle.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_ready "$port" /-/ready idle
    sleep 5
    UNSCRAPED=$(rss_mb "$pid")
    for _ in 1 2 3 4 5; do scrape_s "http://127.0.0.1:$port/metrics" >/dev/null; done
    sleep 3
    IDLE=$(rss_mb "$pid")
    IDLE_SERIES=$(curl -sf "http://127.0.0.1:$port/metrics" | grep -vc '^#' || true)
    stop "$pid"
    rm -rf "$WORK/state-idle"
}
printf 'host: { enabled: true }\n' >"$WORK/host.yaml"
log "idle: host metrics only"
idle_rss "$WORK/host.yaml"
IDLE_HOST=$IDLE IDLE_HOST_SERIES=$IDLE_SERIES IDLE_HOST_UNSCRAPED=$UNSCRAPED

log "idle: host metrics and the 15 shop queries"
SHOP=lookout_bench_scale_shop
sql -e "DROP DATABASE IF EXISTS $SHOP; CREATE DATABASE $SHOP CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
        GRANT SELECT ON $SHOP.* TO '$USER_'@'%'"
sed -e '/^CREATE DATABASE /d' -e '/^USE /d' "$ROOT/examples/shop/mysql.sql" | sql "$SHOP" >/dev/null
sed -e "s#url: mysql://lookout@127.0.0.1:3306/shop#url: mysql://$USER_@$MYSQL_HOST:$MYSQL_PORT/$SHOP#" \
    "$ROOT/examples/shop/lookout.yaml" >"$WORK/shop.yaml"
grep -q "$SHOP" "$WORK/shop.yaml" || die "examples/shop/lookout.yaml no longer has the url this script rewrites"
QUERIES=$(grep -c '^  - name:' "$WORK/shop.yaml")
idle_rss "$WORK/shop.yaml" SHOP_DB_PASSWORD="$PASSWORD"
IDLE_SHOP=$IDLE IDLE_SHOP_SERIES=$IDLE_SERIES IDLE_SHOP_UNSCRAPED=$UNSCRAPED
sql -e "DROP DATABASE IF EXISTS $SHOP"

# ---- 3. sustained ingest --------------------------------------------------------------
cat >"$WORK/ingest.yaml" <<'EOF'
host: { enabled: false }
channels:
  sink: { type: console }
receivers:
  bench: { channels: [sink] }
EOF
port=$(free_port)
mkdir -p "$WORK/state-ingest"
log "ingest: $INGEST notifications"
"$LOOKOUT_BIN" --config "$WORK/ingest.yaml" --listen "127.0.0.1:$port" --state-dir "$WORK/state-ingest" \
    --log.level warn >/dev/null 2>"$WORK/ingest.log" &
INGEST_PID=$!
PIDS+=("$INGEST_PID")
wait_ready "$port" /-/ready ingest
accepted=0 RSS_50K='' round=0
while ((accepted < INGEST)); do
    round=$((round + 1))
    out=$("$LOAD_BIN" --connections 4 --duration 5 --threads 1 --run "scale-$$-$round" \
        "http://127.0.0.1:$port/alertmanager/bench" \
        "$ROOT/examples/payloads/firing.json" "$ROOT/examples/payloads/resolved.json")
    n=$(awk -F= '$1 == "accepted" { print $2 }' <<<"$out")
    ((${n:-0} > 0)) || die "ingest: nothing accepted: $out"
    accepted=$((accepted + n))
    if [[ -z $RSS_50K ]] && ((accepted >= 50000)); then RSS_50K=$(rss_mb "$INGEST_PID") AT_50K=$accepted; fi
done
RSS_END=$(rss_mb "$INGEST_PID")
stop "$INGEST_PID"

# ---- report ---------------------------------------------------------------------------
first_sorted=$(printf '%s\n' "${FIRST[@]}" | sort -n | tr '\n' ' ')
first_max=$(printf '%s\n' "${FIRST[@]}" | sort -n | tail -n 1)
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b ? "met" : "**not met**") }'; }
{
    echo "# Scale benchmark — $(date -u '+%F %T') UTC"
    echo
    echo "Machine: $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);" \
        "lookout $("$LOOKOUT_BIN" --version 2>/dev/null | head -n 1); prometheus-sql-exporter $(dpkg-query -W -f='${Version}' prometheus-sql-exporter 2>/dev/null || echo '?');" \
        "MariaDB $(sql -e 'SELECT VERSION()')."
    echo
    echo "## One query, $SERIES series"
    echo
    echo "\`$QUERY\`, every $INTERVAL s. Scrapes with Prometheus 2's Accept header and gzip;" \
        "load: \`wrk -t1 -c$CONNECTIONS -d$DURATION\` (p50, p99, scrapes/s; snapshots keep arriving during it)." \
        "RSS is VmRSS, peak is VmHWM. The first scrape after a snapshot encodes the new snapshot."
    echo
    echo "| exporter | body KB (uncompressed) | RSS idle MB | RSS after load MB | peak RSS MB | first scrape after a snapshot ms | scrape p50 ms | p99 ms | scrapes/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    echo "| lookout | $((L_BYTES / 1024)) | $L_IDLE | $L_AFTER | $L_HWM | $first_sorted| $L_P50 | $L_P99 | $L_RPS |"
    echo "| prometheus-sql-exporter | $((SE_BYTES / 1024)) | $SE_IDLE | $SE_AFTER | $SE_HWM | $SE_FIRST (any scrape) | $SE_P50 | $SE_P99 | $SE_RPS |"
    echo
    echo "| goal | lookout | target | |"
    echo "|---|---:|---|---|"
    echo "| RSS after load | $L_AFTER MB | ≤ 60 MB and ≤ ½ of prometheus-sql-exporter's ($(awk -v b="$SE_AFTER" 'BEGIN { printf "%.1f", b / 2 }') MB) | $(verdict "$L_AFTER" 60), ratio $(ratio "$L_AFTER" "$SE_AFTER") |"
    echo "| first scrape after a snapshot (worst of $SNAPSHOTS) | $first_max ms | ≤ 300 ms | $(verdict "$first_max" 300) |"
    echo "| cached scrape p99, one scraper (\`wrk -c1\`: p50 $L1_P50 ms, $L1_RPS scrapes/s) | $L1_P99 ms | ≤ 10 ms | $(verdict "$L1_P99" 10) |"
    echo
    echo "## Idle footprint"
    echo
    echo "Started, ready, 5 s (RSS before any scrape), five scrapes, 3 s idle (RSS, the figure the target is for); VmRSS."
    echo
    echo "| configuration | series served | RSS before any scrape MB | RSS MB | target |"
    echo "|---|---:|---:|---:|---|"
    echo "| host metrics only | $IDLE_HOST_SERIES | $IDLE_HOST_UNSCRAPED | $IDLE_HOST | ≤ 10 MB: $(verdict "$IDLE_HOST" 10) |"
    echo "| host metrics + $QUERIES shop queries (examples/shop/lookout.yaml) | $IDLE_SHOP_SERIES | $IDLE_SHOP_UNSCRAPED | $IDLE_SHOP | ≤ 13 MB: $(verdict "$IDLE_SHOP" 13) |"
    echo
    echo "## Sustained ingest"
    echo
    echo "\`ingest-load -c4\` in 5 s rounds, examples/payloads firing and resolved in turn, each a distinct notification; console channel to /dev/null."
    echo
    echo "| accepted | RSS MB |"
    echo "|---:|---:|"
    echo "| $AT_50K | $RSS_50K |"
    echo "| $accepted | $RSS_END |"
    echo
    echo "Ratio $(ratio "$RSS_END" "$RSS_50K") (target ≤ 1.5: $(verdict "$(ratio "$RSS_END" "$RSS_50K")" 1.5))."
} | tee "$RESULTS"
log "written to $RESULTS"
