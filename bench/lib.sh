#!/usr/bin/env bash
# Helpers shared by the benchmark scripts (sourced, not run).
# shellcheck disable=SC2034  # CLK_TCK is used by the scripts that source this file

log() { printf '>> %s\n' "$*" >&2; }

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A port nothing listens on (connect refused).
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# HTTP status of GET $2 on 127.0.0.1:$1 in pure bash (no process spawn, ~1 ms per try);
# empty when nothing listens.
http_status() {
    local status=''
    {
        exec 3<>"/dev/tcp/127.0.0.1/$1" &&
            printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3 &&
            read -r -t 2 _ status _ <&3
        exec 3<&- 3>&-
    } 2>/dev/null || true
    echo "$status"
}

cpu_ticks() { # utime+stime of PID $1; fields after the ")" that ends comm.
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $((${12} + ${13}))
}

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3g", a / b; else print "n/a" }'; }

to_ms() { # wrk latency like 812.00us, 1.23ms, 1.02s → ms
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n }'
}

CLK_TCK=$(getconf CLK_TCK)

# Installs the Debian packages of missing commands: need command:package …
need() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Sets LOOKOUT_BIN to a release build of lookout unless it is already set.
build_lookout() {
    if [[ -z ${LOOKOUT_BIN:-} ]]; then
        log "building lookout (release)"
        cargo build --release --quiet --bin lookout
        LOOKOUT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/lookout"
    fi
}

# Builds bench/ingest-load and sets LOAD_BIN.
build_ingest_load() {
    log "building bench/ingest-load (release)"
    cargo build --release --quiet --manifest-path "$ROOT/bench/ingest-load/Cargo.toml" \
        --target-dir "$ROOT/bench/ingest-load/target"
    LOAD_BIN="$ROOT/bench/ingest-load/target/release/ingest-load"
}

# Waits until GET $2 on 127.0.0.1:$1 answers 200, at most $4 seconds (default 30); dies
# naming $3 and the tail of $WORK/$3.log if there is one.
wait_ready() {
    local deadline=$((SECONDS + ${4:-30})) logged=''
    until [[ $(http_status "$1" "$2") == 200 ]]; do
        if ((SECONDS >= deadline)); then
            [[ -f ${WORK:-}/$3.log ]] && logged=" (log: $(tail -n 5 "$WORK/$3.log"))"
            die "$3 did not answer 200 on :$1$2 within ${4:-30} s$logged"
        fi
        sleep 0.05
    done
}

# MariaDB as root for the SQL benchmarks: MYSQL_* defaults, `sql` (batch, no column
# names), and a check that the server answers.
mariadb_root() {
    MYSQL_HOST=${MYSQL_HOST:-127.0.0.1}
    MYSQL_PORT=${MYSQL_PORT:-3306}
    MYSQL_ROOT_USER=${MYSQL_ROOT_USER:-root}
    MYSQL_ROOT_PASSWORD=${MYSQL_ROOT_PASSWORD:-}
    export MYSQL_PWD=$MYSQL_ROOT_PASSWORD
    sql() { mysql -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_ROOT_USER" --batch --skip-column-names "$@"; }
    sql -e 'SELECT 1' >/dev/null || die "cannot reach MariaDB on $MYSQL_HOST:$MYSQL_PORT as $MYSQL_ROOT_USER"
}

# PostgreSQL as its superuser for the SQL benchmarks: PG_* defaults, `psqlc` (unaligned,
# tuples only), and a check that the server answers.
postgres_root() {
    PG_HOST=${PG_HOST:-127.0.0.1}
    PG_PORT=${PG_PORT:-5432}
    PG_ROOT_USER=${PG_ROOT_USER:-postgres}
    psqlc() { psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_ROOT_USER" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
    psqlc -d postgres -c 'SELECT 1' >/dev/null || die "cannot reach PostgreSQL on $PG_HOST:$PG_PORT as $PG_ROOT_USER"
}
