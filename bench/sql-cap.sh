#!/usr/bin/env bash
# Peak RSS of lookout while a query returns 200,000 rows and max_series is 10 (issue 9,
# item 14): before the fix the whole result set was loaded, then capped; now reading
# stops at the cap. Runs the query a few times on MariaDB and on PostgreSQL, each in its
# own lookout process, and reports VmHWM (peak resident set) of each.
#
# Usage: bench/sql-cap.sh BINARY [BINARY…]   (e.g. an old and a new build)
#   env: ROWS=200000 RUNS=3 MYSQL_HOST=127.0.0.1 PG_HOST=127.0.0.1 DB_USER=lookout
#   DB_PASSWORD=lookout (the test user `.ci/services` creates on both servers)
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh
(($#)) || die "usage: bench/sql-cap.sh BINARY [BINARY…]"
ROWS=${ROWS:-200000}
RUNS=${RUNS:-2}
MYSQL_HOST=${MYSQL_HOST:-127.0.0.1}
PG_HOST=${PG_HOST:-127.0.0.1}
DB_USER=${DB_USER:-lookout}
DB_PASSWORD=${DB_PASSWORD:-lookout}
DB=lookout_bench_cap
WORK=$(mktemp -d)
PID=''
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    MYSQL_PWD=$DB_PASSWORD mysql -h "$MYSQL_HOST" -u "$DB_USER" -e "DROP DATABASE IF EXISTS $DB" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
MYSQL_PWD=$DB_PASSWORD mysql -h "$MYSQL_HOST" -u "$DB_USER" -e "CREATE DATABASE IF NOT EXISTS $DB" ||
    die "cannot create a database on MariaDB at $MYSQL_HOST"

# Rows carry a 100-byte label so a loaded result set is visible in RSS.
declare -A URL SQL
URL[mariadb]="mysql://$DB_USER@$MYSQL_HOST:3306/$DB"
SQL[mariadb]="SELECT seq AS id, REPEAT('x', 100) AS pad, seq AS n FROM seq_1_to_$ROWS"
URL[postgres]="postgres://$DB_USER@$PG_HOST:5432/postgres"
SQL[postgres]="SELECT g AS id, repeat('x', 100) AS pad, g AS n FROM generate_series(1, $ROWS) AS g"

# Sets PEAK to the peak RSS in MB of BINARY after RUNS runs of the capped query on
# DATABASE (no command substitution: `die` must end the script and its cleanup).
peak() {
    local binary=$1 database=$2 port runs=0
    port=$(free_port)
    cat >"$WORK/lookout.yaml" <<YAML
listen: 127.0.0.1:$port
state_dir: $WORK/state
host: { enabled: false }
databases:
  db: { url: '${URL[$database]}', password: '$DB_PASSWORD' }
queries:
  - { name: big, database: db, interval: 5s, timeout: 5s, max_series: 10, sql: "${SQL[$database]}", metrics: [{ name: bench_big, labels: [id, pad], value: n }] }
YAML
    "$binary" --config "$WORK/lookout.yaml" >"$WORK/lookout.log" 2>&1 &
    PID=$!
    local deadline=$((SECONDS + 120))
    while ((runs < RUNS)); do
        ((SECONDS < deadline)) || die "$binary: $RUNS runs did not finish in 120 s ($(tail -n 3 "$WORK/lookout.log"))"
        sleep 0.5
        runs=$(curl -sf "http://127.0.0.1:$port/metrics" |
            awk '/^lookout_query_runs_total\{query="big"\}/ { print int($NF) }' || true)
        runs=${runs:-0}
    done
    PEAK=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$PID/status")
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=''
}

printf '| binary | MariaDB peak RSS (MB) | PostgreSQL peak RSS (MB) |\n|---|---|---|\n'
for binary in "$@"; do
    peak "$binary" mariadb
    mariadb=$PEAK
    peak "$binary" postgres
    printf '| %s | %s | %s |\n' "$binary" "$mariadb" "$PEAK"
done
printf '\n%s rows, max_series 10, %s runs each; VmHWM from /proc/<pid>/status.\n' "$ROWS" "$RUNS"
