#!/usr/bin/env bash
# The kit on this machine without Docker, from Debian packages: MariaDB with the example
# shop, lookout (cargo build --release), Prometheus with rules/, and Alertmanager routing
# back to lookout. Grafana is not packaged in Debian bookworm, so it is left out: use the
# compose stack (deploy/docker-compose.yml) for the dashboards.
#
#   deploy/local/run.sh            # start everything, print the URLs, Ctrl-C stops it all
#   deploy/local/run.sh --check    # start, wait until Prometheus scrapes lookout and has
#                                  # the rules, deliver one test alert, stop; exit 0 if so
#   deploy/local/run.sh --db-only  # only (re)load the example database, then exit
#
# Ports (override through the environment): lookout LOOKOUT_PORT=9788, Prometheus
# PROMETHEUS_PORT=9090, Alertmanager ALERTMANAGER_PORT=9093, MariaDB MARIADB_PORT=3306.
# RULES_DIR (default rules/) and ALERTMANAGER_CONFIG (default alertmanager/alertmanager.yml)
# point at other rules or routes.
# MariaDB: a server already answering on 127.0.0.1:$MARIADB_PORT is used (as root over
# TCP; MYSQL_ROOT_PASSWORD if it needs one), else a private one is started. Either way
# examples/shop/mysql.sql is (re)loaded into a database of its own, SHOP_DB_NAME (default
# `lookout_example_shop`, never your `shop`) — its times are relative to the load — and
# the user `lookout` (password SHOP_DB_PASSWORD, default `lookout`, which is also CI's
# test user) gets SELECT on it. Loading drops the example's tables, so the script refuses
# a SHOP_DB_NAME that exists with tables it did not load (it marks its own with a table
# `lookout_run_sh`).
#
# lookout runs a copy of deploy/lookout.yaml, the compose stack's configuration, with the
# database name, SHOP_DB_ADDR and CREDENTIALS_DIRECTORY pointing here. Prometheus and
# Alertmanager get copies of deploy/prometheus/prometheus.yml and
# alertmanager/alertmanager.yml with the hosts, the rules path and the token file
# rewritten for localhost. Everything the script writes — configs, secrets, data, logs
# (logs/*.log), pid files — is under deploy/local/.run/ (RUN_DIR). Running it again stops
# what a previous run left behind and starts afresh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
run=${RUN_DIR:-$here/.run}
LOOKOUT_PORT=${LOOKOUT_PORT:-9788}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9093}
MARIADB_PORT=${MARIADB_PORT:-3306}
SHOP_DB_PASSWORD=${SHOP_DB_PASSWORD:-lookout}
SHOP_DB_NAME=${SHOP_DB_NAME:-lookout_example_shop}
RULES_DIR=${RULES_DIR:-$repo/rules}
ALERTMANAGER_CONFIG=${ALERTMANAGER_CONFIG:-$repo/alertmanager/alertmanager.yml}

check=false
db_only=false
case ${1:-} in
  "") ;;
  --check) check=true ;;
  --db-only) db_only=true ;;
  *) echo "usage: $0 [--check|--db-only]" >&2; exit 2 ;;
esac

say() { printf '== %s\n' "$*"; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

# ---- processes: every one we start has a pid file, and its command line names $run ----

ours() { # pid → whether it is alive and one of ours
  [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$run"
}

stop_pidfile() { # name
  local file=$run/pids/$1.pid pid
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do ours "$pid" || break; sleep 0.1; done
    ours "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

# Reverse start order: Alertmanager and Prometheus first, then lookout (it drains), then
# our own MariaDB if we started one.
stop_all() {
  local name
  for name in alertmanager prometheus lookout mariadb; do stop_pidfile "$name"; done
}

start() { # name, command... → in the background, logging to logs/NAME.log, with a pid file
  local name=$1; shift
  "$@" >"$run/logs/$name.log" 2>&1 8>&- &
  echo $! >"$run/pids/$name.pid"
}

wait_http() { # name, url
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$2" 2>/dev/null && return 0
    ours "$(cat "$run/pids/$1.pid")" || { tail -n 30 "$run/logs/$1.log" >&2; die "$1 exited"; }
    sleep 0.1
  done
  tail -n 30 "$run/logs/$1.log" >&2
  die "$1 did not answer $2 within 30 s"
}

port_free() { # port
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

mkdir -p "$run"/{logs,pids,secrets}
exec 8>"$run/lock"
flock -n 8 || die "another run.sh is using $run"
stop_all
cleanup() {
  trap - INT TERM EXIT
  say "stopping"
  stop_all
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- tools from Debian ----

find_bin() { # candidates... → first on PATH
  local name
  for name in "$@"; do command -v "$name" && return 0; done
  return 1
}
missing=()
if ! $db_only; then
  find_bin prometheus >/dev/null || missing+=(prometheus)
  find_bin prometheus-alertmanager alertmanager >/dev/null || missing+=(prometheus-alertmanager)
  find_bin curl >/dev/null || missing+=(curl)
fi
find_bin mysql mariadb >/dev/null || missing+=(mariadb-client)
if ((${#missing[@]})); then
  ((EUID == 0)) || die "install first: sudo apt-get install ${missing[*]}"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! $db_only; then
  alertmanager_bin=$(find_bin prometheus-alertmanager alertmanager)
  command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
  for port in "$LOOKOUT_PORT" "$PROMETHEUS_PORT" "$ALERTMANAGER_PORT"; do
    port_free "$port" || die "127.0.0.1:$port is in use (set LOOKOUT_PORT, PROMETHEUS_PORT or ALERTMANAGER_PORT)"
  done
fi
[[ $SHOP_DB_NAME =~ ^[A-Za-z0-9_]+$ ]] || die "SHOP_DB_NAME must be letters, digits and _: $SHOP_DB_NAME"

# ---- MariaDB ----

mysql_root=(mysql --protocol=TCP -h127.0.0.1 -P"$MARIADB_PORT" -uroot)
[[ -n ${MYSQL_ROOT_PASSWORD:-} ]] && mysql_root+=(-p"$MYSQL_ROOT_PASSWORD")

if mysqladmin --protocol=TCP -h127.0.0.1 -P"$MARIADB_PORT" ping >/dev/null 2>&1; then
  say "MariaDB: using the server on 127.0.0.1:$MARIADB_PORT"
else
  say "MariaDB: starting a private server on 127.0.0.1:$MARIADB_PORT (data in $run/mariadb)"
  if ! command -v mariadbd >/dev/null; then
    ((EUID == 0)) || die "install first: sudo apt-get install mariadb-server"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null
  fi
  if [[ ! -d $run/mariadb/data/mysql ]]; then
    mkdir -p "$run/mariadb"
    mariadb-install-db --no-defaults --datadir="$run/mariadb/data" --user="$(id -un)" \
      --auth-root-authentication-method=normal >"$run/logs/mariadb-install.log" 2>&1 \
      || { tail -n 20 "$run/logs/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
  fi
  start mariadb mariadbd --no-defaults --datadir="$run/mariadb/data" --user="$(id -un)" \
    --port="$MARIADB_PORT" --bind-address=127.0.0.1 --socket="$run/mariadb/mysqld.sock" \
    --pid-file="$run/mariadb/mariadbd.pid"
  for _ in $(seq 1 300); do
    mysqladmin --protocol=TCP -h127.0.0.1 -P"$MARIADB_PORT" ping >/dev/null 2>&1 && break
    ours "$(cat "$run/pids/mariadb.pid")" || { tail -n 30 "$run/logs/mariadb.log" >&2; die "mariadbd exited"; }
    sleep 0.1
  done
fi

"${mysql_root[@]}" -e 'SELECT 1' >/dev/null 2>&1 \
  || die "cannot log in to MariaDB as root over TCP (set MYSQL_ROOT_PASSWORD)"
# Loading drops the example's tables: never in a database holding anything else.
foreign=$("${mysql_root[@]}" -N -e "
  SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$SHOP_DB_NAME'
    AND NOT EXISTS (SELECT 1 FROM information_schema.tables
                    WHERE table_schema = '$SHOP_DB_NAME' AND table_name = 'lookout_run_sh')")
((foreign == 0)) || die "database \`$SHOP_DB_NAME\` exists with $foreign tables this script did not load; \
set SHOP_DB_NAME to a new name (its tables would be dropped)"
say "MariaDB: loading examples/shop/mysql.sql into \`$SHOP_DB_NAME\`"
sed -e "s/^CREATE DATABASE IF NOT EXISTS shop /CREATE DATABASE IF NOT EXISTS \`$SHOP_DB_NAME\` /" \
  -e "s/^USE shop;/USE \`$SHOP_DB_NAME\`;/" "$repo/examples/shop/mysql.sql" >"$run/shop.sql"
grep -q "^USE \`$SHOP_DB_NAME\`;" "$run/shop.sql" || die "examples/shop/mysql.sql no longer has its USE line"
"${mysql_root[@]}" <"$run/shop.sql" >"$run/logs/mariadb-load.log"
"${mysql_root[@]}" "$SHOP_DB_NAME" -e \
  "CREATE TABLE IF NOT EXISTS lookout_run_sh (loaded_at DATETIME NOT NULL) COMMENT 'loaded by deploy/local/run.sh';
   INSERT INTO lookout_run_sh VALUES (UTC_TIMESTAMP())"
sql_password=${SHOP_DB_PASSWORD//\\/\\\\}
sql_password=${sql_password//\'/\\\'}
"${mysql_root[@]}" <<SQL
CREATE USER IF NOT EXISTS 'lookout'@'%' IDENTIFIED BY '${sql_password}';
CREATE USER IF NOT EXISTS 'lookout'@'localhost' IDENTIFIED BY '${sql_password}';
GRANT SELECT ON \`${SHOP_DB_NAME}\`.* TO 'lookout'@'%';
GRANT SELECT ON \`${SHOP_DB_NAME}\`.* TO 'lookout'@'localhost';
SQL
mysql --protocol=TCP -h127.0.0.1 -P"$MARIADB_PORT" -ulookout -p"$SHOP_DB_PASSWORD" "$SHOP_DB_NAME" \
  -e 'SELECT 1' >/dev/null 2>&1 \
  || die "the existing MariaDB user 'lookout' has another password: set SHOP_DB_PASSWORD to it"
if $db_only; then
  say "MariaDB: \`$SHOP_DB_NAME\` loaded"
  exit 0
fi

# ---- secrets: files, as lookout.yaml's *_file keys and Alertmanager's credentials_file want ----

umask 077
printf '%s' "$SHOP_DB_PASSWORD" >"$run/secrets/shop_db_password"
[[ -s $run/secrets/lookout_webhook_token ]] \
  || head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$run/secrets/lookout_webhook_token"
umask 022

# ---- lookout ----

say "lookout: cargo build --release --locked"
cargo build --quiet --release --locked --manifest-path "$repo/Cargo.toml"
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
sed "s#@\${SHOP_DB_ADDR}/shop\$#@\${SHOP_DB_ADDR}/$SHOP_DB_NAME#" "$repo/deploy/lookout.yaml" >"$run/lookout.yaml"
grep -qF "/$SHOP_DB_NAME" "$run/lookout.yaml" || die "found no database URL …/shop in deploy/lookout.yaml"
start lookout env SHOP_DB_ADDR="127.0.0.1:$MARIADB_PORT" CREDENTIALS_DIRECTORY="$run/secrets" \
  "$target_dir/release/lookout" --config "$run/lookout.yaml" \
  --listen "127.0.0.1:$LOOKOUT_PORT" --state-dir "$run/lookout"
wait_http lookout "http://127.0.0.1:$LOOKOUT_PORT/-/ready"

# ---- Alertmanager ----

[[ -f $ALERTMANAGER_CONFIG ]] || die "$ALERTMANAGER_CONFIG is missing"
sed -E \
  -e "s#https?://[^/\"' ]+/alertmanager/#http://127.0.0.1:$LOOKOUT_PORT/alertmanager/#g" \
  -e "s#(credentials_file:[[:space:]]*).*#\\1$run/secrets/lookout_webhook_token#" \
  "$ALERTMANAGER_CONFIG" >"$run/alertmanager.yml"
grep -qF "127.0.0.1:$LOOKOUT_PORT/alertmanager/" "$run/alertmanager.yml" \
  || die "found no lookout webhook URL (…/alertmanager/<receiver>) in $ALERTMANAGER_CONFIG"
if command -v amtool >/dev/null; then
  amtool check-config "$run/alertmanager.yml" >"$run/logs/amtool.log" 2>&1 \
    || { cat "$run/logs/amtool.log" >&2; die "amtool check-config failed"; }
fi
start alertmanager "$alertmanager_bin" --config.file="$run/alertmanager.yml" \
  --storage.path="$run/alertmanager" --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
  --cluster.listen-address=
wait_http alertmanager "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready"

# ---- Prometheus ----

[[ -d $RULES_DIR ]] || die "$RULES_DIR is missing"
rules_dir=$(cd "$RULES_DIR" && pwd)
sed \
  -e "s#lookout:9788#127.0.0.1:$LOOKOUT_PORT#g" \
  -e "s#alertmanager:9093#127.0.0.1:$ALERTMANAGER_PORT#g" \
  -e "s#localhost:9090#127.0.0.1:$PROMETHEUS_PORT#g" \
  -e "s#/etc/prometheus/rules/#$rules_dir/#g" \
  "$repo/deploy/prometheus/prometheus.yml" >"$run/prometheus.yml"
if command -v promtool >/dev/null; then # also checks every rule file
  promtool check config "$run/prometheus.yml" >"$run/logs/promtool.log" 2>&1 \
    || { cat "$run/logs/promtool.log" >&2; die "promtool check config failed"; }
fi
start prometheus prometheus --config.file="$run/prometheus.yml" \
  --storage.tsdb.path="$run/prometheus" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
  --web.enable-lifecycle
wait_http prometheus "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"

cat <<EOF

  lookout       http://127.0.0.1:$LOOKOUT_PORT/            (metrics: /metrics)
  Prometheus    http://127.0.0.1:$PROMETHEUS_PORT/          (rules: /rules, alerts: /alerts)
  Alertmanager  http://127.0.0.1:$ALERTMANAGER_PORT/
  MariaDB       127.0.0.1:$MARIADB_PORT, database $SHOP_DB_NAME, user lookout
  Grafana       not run: Debian bookworm has no package (deploy/docker-compose.yml has it)
  logs          $run/logs/   (alerts lookout delivers are printed in lookout.log)

EOF

# ---- --check: the end-to-end facts, then stop ----

prom_query() { # PromQL → the result's JSON
  curl -fsS --get "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" --data-urlencode "query=$1"
}
json() { # python expression over `d` (stdin's JSON) → printed
  python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}
poll() { # seconds, description, command... → until the command succeeds
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 "$seconds"); do "$@" && return 0; sleep 1; done
  die "timed out after ${seconds}s waiting for $what"
}
lookout_up() {
  [[ $(prom_query 'up{job="lookout"}' | json 'd["data"]["result"][0]["value"][1] if d["data"]["result"] else ""') == 1 ]]
}
rules_loaded() {
  local groups
  groups=$(curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/rules" \
    | json 'sum(len(g["rules"]) for g in d["data"]["groups"]) if d["data"]["groups"] else 0')
  ((groups > 0)) && echo "   Prometheus has $groups rules loaded"
}
shop_queries_ok() {
  curl -fsS "http://127.0.0.1:$LOOKOUT_PORT/metrics" | grep -qE '^lookout_database_up\{database="shop"\} 1'
}
alert_delivered() {
  curl -fsS "http://127.0.0.1:$LOOKOUT_PORT/metrics" \
    | grep -qE '^lookout_webhook_requests_total\{.*code="200".*\} [1-9]'
}

if $check; then
  say "check: Prometheus scrapes lookout (up == 1)"
  poll 60 'up{job="lookout"} == 1' lookout_up
  say "check: lookout reaches the shop database"
  poll 30 'lookout_database_up{database="shop"} 1' shop_queries_ok
  say "check: Prometheus loaded the rules"
  poll 30 "rules in /api/v1/rules" rules_loaded
  say "check: an alert posted to Alertmanager reaches lookout with the token"
  curl -fsS -H 'Content-Type: application/json' "http://127.0.0.1:$ALERTMANAGER_PORT/api/v2/alerts" \
    -d '[{"labels": {"alertname": "LocalRunCheck", "severity": "critical", "job": "lookout"},
          "annotations": {"summary": "deploy/local/run.sh --check"}}]' >/dev/null
  poll 120 "lookout_webhook_requests_total{code=\"200\"} > 0" alert_delivered
  say "check: all good"
  exit 0
fi

say "running; Ctrl-C stops everything"
while true; do
  # Returns when any of them exits (or on Ctrl-C, through the trap).
  wait -n || true
  for name in lookout prometheus alertmanager mariadb; do
    [[ -f $run/pids/$name.pid ]] || continue
    ours "$(cat "$run/pids/$name.pid")" && continue
    tail -n 20 "$run/logs/$name.log" >&2
    die "$name exited; see $run/logs/$name.log"
  done
done
