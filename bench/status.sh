#!/usr/bin/env bash
# Status page and outbox statistics benchmark (issue 9, item 7): does loading `GET /` slow
# the webhook, and what do the outbox statistics cost at 300,000 rows?
#
# 1. Webhook accept latency with and without LOOPS (6) clients reloading `/` back to back,
#    for each lookout binary given (BASELINE_BIN, e.g. a build of an older commit, then
#    LOOKOUT_BIN), side by side in one run because this 2-core machine is noisy. Each
#    lookout starts on a fresh state dir holding 40 large notifications (800 alerts,
#    ~240 KB each) as dead letters — a local responder answers them DingTalk's permanent
#    error 310000 — so `/` lists 20 of them; the measured notifications go to a DingTalk
#    channel at a closed port (they stay pending). The load client is bench/ingest-load
#    with one connection (like Alertmanager), posting examples/payloads in turn.
# 2. `cargo bench --bench outbox` (bench/outbox.rs): Outbox::stats() at ROWS rows against
#    the version 1 query on the same database.
#
# Prints a markdown report and writes it to bench/results/status-<date>.md.
#
# Usage: bench/status.sh   env: DURATION=10 (seconds per load) LOOPS=6 ROWS=300000 RUNS=20;
#   LOOKOUT_BIN=path skips the release build; BASELINE_BIN=path adds a second binary to
#   compare; KEEP_WORK=1 keeps the temporary directory.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION=${DURATION:-10}
LOOPS=${LOOPS:-6}
ROWS=${ROWS:-300000}
RUNS=${RUNS:-20}
RESULTS="$ROOT/bench/results/status-$(date +%F).md"
PAYLOADS=("$ROOT/examples/payloads/firing.json" "$ROOT/examples/payloads/resolved.json")
mkdir -p "$ROOT/bench/results"
command -v curl >/dev/null || die "curl is needed"
command -v python3 >/dev/null || die "python3 is needed (the refusing robot, the large payloads)"

# --- builds ---------------------------------------------------------------------------
build_lookout
build_ingest_load

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -n ${KEEP_WORK:-} ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- peers: a robot that refuses everything for good, and 40 large notifications --------
REFUSER_PORT=$(free_port)
python3 - "$REFUSER_PORT" >"$WORK/refuser.log" 2>&1 <<'EOF' &
import http.server, sys
class Refuse(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"errcode":310000,"errmsg":"sign not match"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Refuse).serve_forever()
EOF
PIDS+=($!)
mkdir -p "$WORK/large"
python3 - "$WORK/large" <<'EOF'
import json, sys
for n in range(40):
    name = f"Large{n}"
    alerts = [{
        "status": "firing",
        "labels": {"alertname": name, "severity": "critical", "instance": f"host-{i}:9100"},
        "annotations": {"summary": f"{name} on host-{i}", "description": "x" * 200},
        "startsAt": "2026-11-22T02:10:05Z", "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"{n:08x}{i:08x}",
    } for i in range(800)]
    body = {"version": "4", "status": "firing", "receiver": "bulk",
            "groupKey": f'{{}}:{{alertname="{name}"}}', "groupLabels": {"alertname": name},
            "commonLabels": {"alertname": name}, "externalURL": "http://am:9093", "alerts": alerts}
    with open(f"{sys.argv[1]}/{n}.json", "w") as f:
        json.dump(body, f)
EOF
CLOSED_PORT=$(free_port)
cat >"$WORK/lookout.yaml" <<EOF
host: { enabled: false }
channels:
  refusing: { type: dingtalk, url: 'http://127.0.0.1:$REFUSER_PORT/robot/send?access_token=bench', rate_limit: 1000/min }
  stuck: { type: dingtalk, url: 'http://127.0.0.1:$CLOSED_PORT/robot/send?access_token=bench', rate_limit: 1000/min, retry: { initial: 1h, max: 1h } }
receivers:
  bulk: { channels: [refusing] }
  bench: { channels: [stuck] }
EOF

declare -A OUT
load() { # run-name port
    local out
    out=$("$LOAD_BIN" --connections 1 --duration "$DURATION" --run "$1-$$-$RANDOM" \
        "http://127.0.0.1:$2/alertmanager/bench" "${PAYLOADS[@]}")
    while IFS='=' read -r key value; do OUT[$1/$key]=$value; done <<<"$out"
    ((${OUT[$1/requests]:-0} > 0)) || die "$1: no request completed: $out"
}
val() { echo "${OUT[$1/$2]:-}"; }

dead_letters() { # port → the refusing channel's dead letters
    curl -s "http://127.0.0.1:$1/metrics" |
        awk '/^lookout_outbox_dead\{channel="refusing"\}/ { print $2 + 0 }'
}

# --- accept latency with and without / load, per binary ---------------------------------
NAMES=()
declare -A BIN PAGES
[[ -n ${BASELINE_BIN:-} ]] && NAMES+=(baseline) && BIN[baseline]=$BASELINE_BIN
NAMES+=(lookout)
BIN[lookout]=$LOOKOUT_BIN
for name in "${NAMES[@]}"; do
    state="$WORK/state-$name"
    mkdir -p "$state"
    port=$(free_port)
    log "$name on :$port: 40 large dead letters, then ${DURATION} s quiet and ${DURATION} s with $LOOPS loops on /"
    "${BIN[$name]}" --config "$WORK/lookout.yaml" --listen "127.0.0.1:$port" --state-dir "$state" \
        --log.level warn >/dev/null 2>"$WORK/lookout-$name.log" &
    pid=$!
    PIDS+=("$pid")
    wait_ready "$port" /-/ready "$name"
    for file in "$WORK"/large/*.json; do
        curl -sf -o /dev/null -H 'Content-Type: application/json' --data-binary "@$file" \
            "http://127.0.0.1:$port/alertmanager/bulk" || die "$name: posting $file failed"
    done
    deadline=$((SECONDS + 120))
    until [[ $(dead_letters "$port") == 40 ]]; do
        ((SECONDS < deadline)) || die "$name: the 40 dead letters did not appear ($(dead_letters "$port"))"
        sleep 0.5
    done
    load "$name/quiet" "$port"
    loops=()
    for i in $(seq "$LOOPS"); do
        (
            n=0
            while [[ ! -e $WORK/stop-$name ]]; do
                curl -s -o /dev/null "http://127.0.0.1:$port/" && n=$((n + 1))
            done
            echo "$n" >"$WORK/pages-$name-$i"
        ) &
        loops+=($!)
    done
    sleep 1
    load "$name/loaded" "$port"
    touch "$WORK/stop-$name"
    wait "${loops[@]}"
    PAGES[$name]=$(cat "$WORK"/pages-"$name"-* | awk '{ n += $1 } END { print n }')
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done

# --- outbox statistics at ROWS rows ----------------------------------------------------
log "cargo bench --bench outbox (ROWS=$ROWS, RUNS=$RUNS)"
declare -A STATS
while IFS='=' read -r key value; do STATS[$key]=$value; done < <(
    ROWS=$ROWS RUNS=$RUNS cargo bench --quiet --bench outbox 2>/dev/null | grep '='
)
[[ -n ${STATS[stats_median_ms]:-} ]] || die "the outbox bench printed nothing"

{
    echo "# Status page and outbox statistics — $(date '+%F %T %Z')"
    echo
    echo "Machine: $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)."
    echo "Each lookout: fresh outbox with 40 notifications of 800 alerts (~240 KB) as dead letters"
    echo "(\`/\` lists 20), webhook load \`ingest-load --connections 1 --duration $DURATION\` with"
    echo "examples/payloads to a channel at a closed port; \"with /\" = $LOOPS curl loops reloading \`/\`."
    echo
    echo "| binary | accept p50 ms | p99 ms | accepted/s | with / p50 ms | p99 ms | accepted/s | pages of / served |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for name in "${NAMES[@]}"; do
        echo "| $name (\`${BIN[$name]}\`) | $(val "$name/quiet" p50_ms) | $(val "$name/quiet" p99_ms) |" \
            "$(val "$name/quiet" accepted_per_s) | $(val "$name/loaded" p50_ms) | $(val "$name/loaded" p99_ms) |" \
            "$(val "$name/loaded" accepted_per_s) | ${PAGES[$name]} |"
    done
    echo
    echo "Outbox statistics (\`cargo bench --bench outbox\`, ${STATS[rows]} delivery rows in 4 channels," \
        "1 % pending, 1 % dead; median of $RUNS):"
    echo
    echo "| query | median ms | max ms |"
    echo "|---|---:|---:|"
    echo "| \`Outbox::stats()\` (trigger-kept counts + partial index) | ${STATS[stats_median_ms]} | ${STATS[stats_max_ms]} |"
    echo "| version 1 query (scan of \`deliveries\`) | ${STATS[stats_v1_median_ms]} | ${STATS[stats_v1_max_ms]} |"
    echo
    echo "Oldest pending row: \`${STATS[oldest_pending_plan]}\`."
} | tee "$RESULTS"
log "wrote $RESULTS"
