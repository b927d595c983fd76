#!/usr/bin/env bash
# Business /metrics benchmark (SPEC §5): lookout vs prometheus-sql-exporter (Debian,
# justwatchcom/sql_exporter) vs query-exporter (PyPI) running the same 14 shop queries on
# the same intervals against examples/shop loaded into the local MariaDB, plus a bare
# hyper server answering lookout's own bytes ("the limit of this machine"), side by side
# in one run because this 2-core machine is noisy.
#
# Measures, per server: wrk -t1 -c4 throughput and p50/p99 with the headers Prometheus
# sends (Accept: text/plain;version=0.0.4, Accept-Encoding: gzip) and without gzip; CPU
# per scrape (utime+stime ÷ requests); idle and post-load VmRSS. And the load each exporter
# puts on the database, from MariaDB's own per-user counters (information_schema.
# USER_STATISTICS, enabled with `SET GLOBAL userstat = 1` for the run and restored after;
# each exporter logs in as its own user, so other clients of this MariaDB — tests running
# concurrently — do not count): statements per minute with 0 scrapers, then with 4
# concurrent scrapers on every exporter at once.
# Prints a markdown report and writes it to bench/results/sql-<date>.md.
#
# Usage: bench/sql.sh   env: DURATION=10s CONNECTIONS=4 (wrk), DB_WINDOW=60 (seconds of
#   each database window), MYSQL_HOST=127.0.0.1 MYSQL_PORT=3306 MYSQL_ROOT_USER=root
#   MYSQL_ROOT_PASSWORD= (an account that can create databases and users and SET GLOBAL),
#   LOOKOUT_BIN=path skips the release build and uses that binary; KEEP_WORK=1 keeps the
#   temporary directory (configurations, logs) for a look afterwards.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-4}
DB_WINDOW=${DB_WINDOW:-60}
ACCEPT='text/plain;version=0.0.4'
DB=lookout_bench_shop
RESULTS="$ROOT/bench/results/sql-$(date +%F).md"
VENV="$ROOT/target/bench-venv"
mkdir -p "$ROOT/bench/results"


# --- peers ----------------------------------------------------------------------------
need wrk:wrk curl:curl mysql:mariadb-client prometheus-sql-exporter:prometheus-sql-exporter
if [[ ! -x $VENV/bin/query-exporter ]] || ! "$VENV/bin/python" -c 'import pymysql, yaml' 2>/dev/null; then
    log "installing query-exporter and PyMySQL into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q query-exporter pymysql
fi

mariadb_root

# --- builds ---------------------------------------------------------------------------
build_lookout
log "building bench/bare-hyper (release)"
cargo build --release --quiet --manifest-path "$ROOT/bench/bare-hyper/Cargo.toml"
BARE_BIN="$ROOT/bench/bare-hyper/target/release/bare-hyper"

# --- helpers --------------------------------------------------------------------------
WORK=$(mktemp -d)
PIDS=()
USERS=(lkb_lookout lkb_sqlexp lkb_qe)
USERSTAT_BEFORE=''
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    {
        sql -e "DROP DATABASE IF EXISTS $DB"
        for user in "${USERS[@]}"; do sql -e "DROP USER IF EXISTS '$user'@'%'"; done
        [[ -n $USERSTAT_BEFORE ]] && sql -e "SET GLOBAL userstat = $USERSTAT_BEFORE"
    } 2>/dev/null || true
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# "selects others cpu_ms connections" of one MariaDB user, cumulative (USER_STATISTICS).
db_counters() {
    local row
    row=$(sql -e "SELECT SELECT_COMMANDS, UPDATE_COMMANDS + OTHER_COMMANDS, ROUND(CPU_TIME * 1000, 1), TOTAL_CONNECTIONS
                  FROM information_schema.USER_STATISTICS WHERE USER = '$1'")
    row=${row//$'\t'/ }
    echo "${row:-0 0 0 0}"
}
# Query runs the exporter itself counted (lookout_query_runs_total, query-exporter's
# queries_total); sql_exporter has no such counter.
own_runs() {
    local body
    case $1 in
        lookout | query-exporter)
            body=$(curl -sf -H "Accept: $ACCEPT" "http://127.0.0.1:${PORT[$1]}/metrics" || true)
            awk '/^(lookout_query_runs_total|queries_total)\{/ { n += $NF } END { printf "%d", n }' <<<"$body" ;;
        *) echo '' ;;
    esac
}
# shellcheck disable=SC2034  # `into` is a nameref: this fills the caller's array
snapshot_db() { # into the associative array named $1: "db counters + own runs" per exporter
    local -n into=$1
    for name in lookout sql_exporter query-exporter; do
        into["$name"]="$(db_counters "${DBUSER[$name]}") $(own_runs "$name")"
    done
}
per_min() { awk -v a="$1" -v b="$2" -v s="$3" 'BEGIN { printf "%.1f", (b - a) * 60 / s }'; }

# --- the database ---------------------------------------------------------------------
log "loading examples/shop/mysql.sql into $DB"
USERSTAT_BEFORE=$(sql -e 'SELECT @@GLOBAL.userstat')
sql -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
sed -e '/^CREATE DATABASE /d' -e '/^USE /d' "$ROOT/examples/shop/mysql.sql" | sql "$DB" >/dev/null
PASSWORD="bench-$RANDOM$RANDOM"
for user in "${USERS[@]}"; do
    sql -e "DROP USER IF EXISTS '$user'@'%'; CREATE USER '$user'@'%' IDENTIFIED BY '$PASSWORD';
            GRANT SELECT ON $DB.* TO '$user'@'%'"
done
sql -e 'SET GLOBAL userstat = 1'
declare -A DBUSER=([lookout]=lkb_lookout [sql_exporter]=lkb_sqlexp [query-exporter]=lkb_qe)

# --- the three configurations, generated from examples/shop/lookout.yaml ----------------
# lookout: the example as is, host metrics off, pointed at the scratch database.
# sql_exporter: one job per interval; each query keeps its SQL, its label columns and its
#   value columns (exposed as sql_<query>{col="<column>"} — its naming, same data).
# query-exporter: each query keeps its interval; its columns must be named after the
#   metrics, so the SQL is wrapped: SELECT labels, column AS metric FROM (<sql>) AS q.
log "writing the exporters' configurations"
LOOKOUT_PORT=$(free_port) SE_PORT=$(free_port) QE_PORT=$(free_port)
"$VENV/bin/python" - "$ROOT/examples/shop/lookout.yaml" "$WORK" "$DB" "$MYSQL_HOST" "$MYSQL_PORT" "$PASSWORD" <<'PY'
import sys, yaml
src, work, db, host, port, password = sys.argv[1:]
conf = yaml.safe_load(open(src))
conf["host"] = {"enabled": False}
conf["databases"]["shop"]["url"] = f"mysql://lkb_lookout@{host}:{port}/{db}"
conf.pop("listen", None)
conf.pop("state_dir", None)
yaml.safe_dump(conf, open(f"{work}/lookout.yaml", "w"), allow_unicode=True, sort_keys=False)

def secs(d):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if d.endswith(u) and d[: -len(u)].isdigit():
            return int(float(d[: -len(u)]) * units[u])
    raise SystemExit(f"unsupported interval {d!r}")

jobs, qe_metrics, qe_queries, per_minute = {}, {}, {}, 0.0
for q in conf["queries"]:
    interval = secs(q.get("interval", "60s"))
    per_minute += 60 / interval
    labels = sorted({l for m in q["metrics"] for l in m.get("labels", [])})
    values = [m["value"] for m in q["metrics"]]
    jobs.setdefault(interval, []).append({
        "name": q["name"],
        "help": q["metrics"][0].get("help", q["name"]),
        "labels": labels,
        "values": values,
        "query": q["sql"],
    })
    cols = [f"q.`{l}`" for l in labels] + [f"q.`{m['value']}` AS `{m['name']}`" for m in q["metrics"]]
    for m in q["metrics"]:
        qe_metrics[m["name"]] = {"type": "gauge", "description": m.get("help", m["name"]),
                                 **({"labels": m["labels"]} if m.get("labels") else {})}
    qe_queries[q["name"]] = {
        "interval": interval,
        "databases": ["shop"],
        "metrics": [m["name"] for m in q["metrics"]],
        "sql": f"SELECT {', '.join(cols)} FROM (\n{q['sql'].strip()}\n) AS q",
    }

sql_exporter = {"jobs": [{
    "name": f"shop_{interval}s",
    "interval": f"{interval}s",
    "connections": [f"mysql://lkb_sqlexp:{password}@tcp({host}:{port})/{db}"],
    "queries": queries,
} for interval, queries in sorted(jobs.items())]}
yaml.safe_dump(sql_exporter, open(f"{work}/sql_exporter.yml", "w"), allow_unicode=True, sort_keys=False)

query_exporter = {
    "databases": {"shop": {"dsn": f"mysql+pymysql://lkb_qe:{password}@{host}:{port}/{db}"}},
    "metrics": qe_metrics,
    "queries": qe_queries,
}
yaml.safe_dump(query_exporter, open(f"{work}/query_exporter.yaml", "w"), allow_unicode=True, sort_keys=False)
open(f"{work}/expected", "w").write(f"{len(conf['queries'])} {per_minute:.1f}\n")
PY
read -r QUERY_COUNT EXPECTED_PER_MIN <"$WORK/expected"
SHOP_DB_PASSWORD=$PASSWORD "$LOOKOUT_BIN" check-config "$WORK/lookout.yaml" >/dev/null ||
    die "the generated lookout configuration is invalid"
"$VENV/bin/query-exporter" --config "$WORK/query_exporter.yaml" --check-only >/dev/null ||
    die "the generated query-exporter configuration is invalid"

# --- start the servers ----------------------------------------------------------------
mkdir -p "$WORK/state"
log "starting lookout on :$LOOKOUT_PORT"
SHOP_DB_PASSWORD=$PASSWORD "$LOOKOUT_BIN" --config "$WORK/lookout.yaml" \
    --listen "127.0.0.1:$LOOKOUT_PORT" --state-dir "$WORK/state" --log.level warn \
    >"$WORK/lookout.log" 2>&1 &
LOOKOUT_PID=$!
PIDS+=("$LOOKOUT_PID")
log "starting prometheus-sql-exporter on :$SE_PORT"
LOGLEVEL=warn prometheus-sql-exporter -config.file "$WORK/sql_exporter.yml" \
    -web.listen-address "127.0.0.1:$SE_PORT" >"$WORK/sql_exporter.log" 2>&1 &
SE_PID=$!
PIDS+=("$SE_PID")
log "starting query-exporter on :$QE_PORT"
"$VENV/bin/query-exporter" --config "$WORK/query_exporter.yaml" -H 127.0.0.1 -p "$QE_PORT" \
    -L warning >"$WORK/query-exporter.log" 2>&1 &
QE_PID=$!
PIDS+=("$QE_PID")
wait_ready "$LOOKOUT_PORT" /-/ready lookout
wait_ready "$SE_PORT" /metrics sql_exporter
wait_ready "$QE_PORT" /metrics query-exporter

# Every query has run once when lookout shows all of its families and the others report a
# result for every query (lookout starts each query within 2 s; the others at once).
succeeded() { # port name → how many queries have succeeded, by the exporter's own metrics
    local body
    body=$(curl -sf -H "Accept: $ACCEPT" "http://127.0.0.1:$1/metrics" || true)
    case $2 in
        lookout) grep -cE '^lookout_query_success\{.*\} 1(\.0)?$' <<<"$body" || true ;;
        sql_exporter) grep -c '^sql_exporter_last_scrape_failed{.*} 0$' <<<"$body" || true ;;
        query-exporter) grep '^queries_total{.*status="success"' <<<"$body" | grep -o 'query="[^"]*"' | sort -u | wc -l ;;
    esac
}
deadline=$((SECONDS + 30))
until (($(succeeded "$LOOKOUT_PORT" lookout) == QUERY_COUNT)) &&
    (($(succeeded "$SE_PORT" sql_exporter) == QUERY_COUNT)) &&
    (($(succeeded "$QE_PORT" query-exporter) == QUERY_COUNT)); do
    if ((SECONDS >= deadline)); then
        log "queries succeeded of $QUERY_COUNT: lookout $(succeeded "$LOOKOUT_PORT" lookout)," \
            "sql_exporter $(succeeded "$SE_PORT" sql_exporter)," \
            "query-exporter $(succeeded "$QE_PORT" query-exporter)"
        tail -n 5 "$WORK"/*.log >&2
        die "the exporters did not all serve the shop metrics within 30 s"
    fi
    sleep 0.5
done

# lookout's bytes, as Prometheus would get them, for the bare server.
curl -sf -H "Accept: $ACCEPT" "http://127.0.0.1:$LOOKOUT_PORT/metrics" -o "$WORK/metrics.txt"
curl -sf -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' \
    "http://127.0.0.1:$LOOKOUT_PORT/metrics" -o "$WORK/metrics.txt.gz"
gzip -t "$WORK/metrics.txt.gz" 2>/dev/null || die "lookout ignored Accept-Encoding: gzip"
CONTENT_TYPE=$(curl -sf -o /dev/null -w '%{content_type}' -H "Accept: $ACCEPT" \
    "http://127.0.0.1:$LOOKOUT_PORT/metrics")
BARE_PORT=$(free_port)
log "starting bare-hyper on :$BARE_PORT"
CONTENT_TYPE=$CONTENT_TYPE "$BARE_BIN" "$WORK/metrics.txt" "$BARE_PORT" "$WORK/metrics.txt.gz" \
    >"$WORK/bare-hyper.log" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
wait_ready "$BARE_PORT" /metrics bare-hyper

SERVERS=(lookout sql_exporter query-exporter bare-hyper)
EXPORTERS=(lookout sql_exporter query-exporter)
declare -A PID=([lookout]=$LOOKOUT_PID [sql_exporter]=$SE_PID [query-exporter]=$QE_PID [bare-hyper]=$BARE_PID)
declare -A PORT=([lookout]=$LOOKOUT_PORT [sql_exporter]=$SE_PORT [query-exporter]=$QE_PORT [bare-hyper]=$BARE_PORT)
declare -A BODY_ID BODY_GZ SAMPLES
for name in "${SERVERS[@]}"; do
    url="http://127.0.0.1:${PORT[$name]}/metrics"
    curl -sf -H "Accept: $ACCEPT" "$url" -o "$WORK/$name.txt"
    curl -sf -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' "$url" -o "$WORK/$name.txt.gz"
    BODY_ID[$name]=$(awk -v b="$(stat -c %s "$WORK/$name.txt")" 'BEGIN { printf "%.1f", b / 1024 }')
    BODY_GZ[$name]=$(awk -v b="$(stat -c %s "$WORK/$name.txt.gz")" 'BEGIN { printf "%.1f", b / 1024 }')
    gzip -t "$WORK/$name.txt.gz" 2>/dev/null || BODY_GZ[$name]="${BODY_GZ[$name]} (not gzipped)"
    SAMPLES[$name]=$(grep -vc '^#' "$WORK/$name.txt" || true)
done
sleep 1
declare -A RSS_IDLE RSS_AFTER
for name in "${SERVERS[@]}"; do RSS_IDLE[$name]=$(rss_mb "${PID[$name]}"); done

# --- database load with 0 scrapers ----------------------------------------------------
log "database window, 0 scrapers (${DB_WINDOW} s)"
declare -A DB0_BEFORE DB0_AFTER DB4_BEFORE DB4_AFTER
snapshot_db DB0_BEFORE
sleep "$DB_WINDOW"
snapshot_db DB0_AFTER

# --- scrape throughput, one server at a time --------------------------------------------
declare -A RPS P50 P99 CPU
for encoding in gzip identity; do
    headers=(-H "Accept: $ACCEPT")
    [[ $encoding == gzip ]] && headers+=(-H 'Accept-Encoding: gzip')
    for name in "${SERVERS[@]}"; do
        pid=${PID[$name]}
        log "wrk $name ($encoding, $DURATION)"
        before=$(cpu_ticks "$pid")
        out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "${headers[@]}" \
            "http://127.0.0.1:${PORT[$name]}/metrics")
        after=$(cpu_ticks "$pid")
        if grep -q 'Non-2xx' <<<"$out"; then
            die "$name answered non-2xx under load:"$'\n'"$out"
        fi
        requests=$(awk '/requests in/ { print $1 }' <<<"$out")
        ((requests > 0)) || die "$name served no requests:"$'\n'"$out"
        key="$name/$encoding"
        RPS[$key]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
        P50[$key]=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
        P99[$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
        CPU[$key]=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" \
            'BEGIN { printf "%.3f", t * 1000 / hz / n }')
    done
done
for name in "${SERVERS[@]}"; do RSS_AFTER[$name]=$(rss_mb "${PID[$name]}"); done

# --- database load with 4 scrapers on every exporter at once ------------------------------
log "database window, $CONNECTIONS scrapers on each exporter at once (${DB_WINDOW} s)"
declare -A SCRAPES4
snapshot_db DB4_BEFORE
WRK_PIDS=()
for name in "${EXPORTERS[@]}"; do
    wrk -t1 -c"$CONNECTIONS" -d"${DB_WINDOW}s" -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' \
        "http://127.0.0.1:${PORT[$name]}/metrics" >"$WORK/wrk-db-$name.txt" &
    WRK_PIDS+=($!)
    PIDS+=($!)
done
wait "${WRK_PIDS[@]}"
snapshot_db DB4_AFTER
for name in "${EXPORTERS[@]}"; do
    SCRAPES4[$name]=$(awk -v s="$DB_WINDOW" '/requests in/ { printf "%.0f", $1 * 60 / s }' "$WORK/wrk-db-$name.txt")
done
for name in "${EXPORTERS[@]}"; do
    kill -0 "${PID[$name]}" 2>/dev/null || die "$name died during the run (log: $(tail -n 5 "$WORK/$name.log"))"
done

# --- report ---------------------------------------------------------------------------
db_rate() { # before after field (1 selects, 2 others, 3 DB CPU ms, 4 connections, 5 own runs)
    local a b
    a=$(cut -d' ' -f"$3" <<<"$1") b=$(cut -d' ' -f"$3" <<<"$2")
    if [[ -z $a || -z $b ]]; then echo 'n/a'; else per_min "$a" "$b" "$DB_WINDOW"; fi
}
qe_version=$("$VENV/bin/query-exporter" --version 2>&1 | head -1)
{
    echo "# Business /metrics benchmark — $(date '+%F %T %Z')"
    echo
    echo "Machine: $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);" \
        "lookout $("$LOOKOUT_BIN" --version 2>/dev/null | head -1 || echo '?');" \
        "prometheus-sql-exporter $(dpkg-query -W -f '${Version}' prometheus-sql-exporter 2>/dev/null);" \
        "$qe_version; MariaDB $(sql -e 'SELECT VERSION()')."
    echo "The $QUERY_COUNT queries of \`examples/shop/lookout.yaml\` on their intervals" \
        "($EXPECTED_PER_MIN runs/min), on \`examples/shop/mysql.sql\` loaded into \`$DB\`; lookout with" \
        "host metrics off. Load: \`wrk -t1 -c$CONNECTIONS -d$DURATION --latency -H 'Accept: $ACCEPT'\`" \
        "(+ \`Accept-Encoding: gzip\` in the gzip rows), one server at a time. CPU per scrape = utime+stime" \
        "delta of the server ÷ requests. bare-hyper serves lookout's own bytes (pre-compressed for gzip)."
    echo
    echo "| server | encoding | req/s | p50 ms | p99 ms | CPU ms/scrape |"
    echo "|---|---|---:|---:|---:|---:|"
    for encoding in gzip identity; do
        for name in "${SERVERS[@]}"; do
            key="$name/$encoding"
            echo "| $name | $encoding | ${RPS[$key]} | ${P50[$key]} | ${P99[$key]} | ${CPU[$key]} |"
        done
    done
    echo
    echo "| ratio | gzip | identity | target |"
    echo "|---|---:|---:|---|"
    echo "| lookout ÷ sql_exporter, req/s | $(ratio "${RPS[lookout/gzip]}" "${RPS[sql_exporter/gzip]}") |" \
        "$(ratio "${RPS[lookout/identity]}" "${RPS[sql_exporter/identity]}") | ≥ 10 |"
    echo "| lookout ÷ query-exporter, req/s | $(ratio "${RPS[lookout/gzip]}" "${RPS[query-exporter/gzip]}") |" \
        "$(ratio "${RPS[lookout/identity]}" "${RPS[query-exporter/identity]}") | ≥ 100 |"
    echo "| lookout ÷ bare hyper, req/s | $(ratio "${RPS[lookout/gzip]}" "${RPS[bare-hyper/gzip]}") |" \
        "$(ratio "${RPS[lookout/identity]}" "${RPS[bare-hyper/identity]}") | ≥ 0.70 |"
    echo "| lookout p99 ms | ${P99[lookout/gzip]} | ${P99[lookout/identity]} | < 2 |"
    echo
    echo "Database load per exporter, from MariaDB's \`information_schema.USER_STATISTICS\` (each exporter" \
        "has its own user), over ${DB_WINDOW} s windows scaled to a minute: idle (0 scrapers), then with" \
        "$CONNECTIONS wrk connections on every exporter at once (gzip). SELECT counts SELECT statements" \
        "(queries and driver settings reads), \"other\" every other statement (session settings), connections" \
        "the logins, DB CPU MariaDB's CPU time for that user. Query runs are the exporter's own counter" \
        "(\`lookout_query_runs_total\`, query-exporter's \`queries_total\`; sql_exporter has none)."
    echo
    echo "| exporter | scrapers | scrapes/min | query runs/min (own count) | SELECT/min | other statements/min | connections/min | DB CPU ms/min |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for name in "${EXPORTERS[@]}"; do
        for window in 0 4; do
            if ((window == 0)); then
                before=${DB0_BEFORE[$name]} after=${DB0_AFTER[$name]} scrapers=0 scrapes=0
            else
                before=${DB4_BEFORE[$name]} after=${DB4_AFTER[$name]} scrapers=$CONNECTIONS scrapes=${SCRAPES4[$name]}
            fi
            echo "| $name | $scrapers | $scrapes | $(db_rate "$before" "$after" 5) |" \
                "$(db_rate "$before" "$after" 1) | $(db_rate "$before" "$after" 2) |" \
                "$(db_rate "$before" "$after" 4) | $(db_rate "$before" "$after" 3) |"
        done
    done
    echo
    echo "Expected from the intervals: $EXPECTED_PER_MIN query runs/min (a ${DB_WINDOW} s window catches" \
        "each query ⌊n⌋ or ⌈n⌉ times, so ± a few)."
    echo
    echo "| footprint | lookout | sql_exporter | query-exporter | bare-hyper |"
    echo "|---|---:|---:|---:|---:|"
    echo "| idle RSS MB (after the first scrapes) | ${RSS_IDLE[lookout]} | ${RSS_IDLE[sql_exporter]} | ${RSS_IDLE[query-exporter]} | ${RSS_IDLE[bare-hyper]} |"
    echo "| RSS after load MB | ${RSS_AFTER[lookout]} | ${RSS_AFTER[sql_exporter]} | ${RSS_AFTER[query-exporter]} | ${RSS_AFTER[bare-hyper]} |"
    echo "| samples served | ${SAMPLES[lookout]} | ${SAMPLES[sql_exporter]} | ${SAMPLES[query-exporter]} | ${SAMPLES[bare-hyper]} |"
    echo "| body KiB (identity / gzip) | ${BODY_ID[lookout]} / ${BODY_GZ[lookout]} | ${BODY_ID[sql_exporter]} / ${BODY_GZ[sql_exporter]} | ${BODY_ID[query-exporter]} / ${BODY_GZ[query-exporter]} | ${BODY_ID[bare-hyper]} / ${BODY_GZ[bare-hyper]} |"
    echo
    echo "Samples include each exporter's own metrics (Go/Python runtime, per-query health, lookout's" \
        "process and self metrics); the shop data is the same."
} | tee "$RESULTS"
log "wrote $RESULTS"
