#!/usr/bin/env bash
# Host /metrics benchmark (SPEC §5, §6.8): lookout (cached, the default `host.max_age:
# 1s`), lookout uncached (`host.max_age: 0s`: every scrape collects, as node_exporter
# does and as a real Prometheus scraping every 15 s always gets), prometheus-node-exporter
# and a bare hyper server answering lookout's own bytes ("the limit of this machine"),
# side by side in one run because this 2-core machine is noisy.
#
# Measures, per server: wrk -t1 -c4 throughput and p50/p99 latency with the headers
# Prometheus sends (Accept: text/plain;version=0.0.4, Accept-Encoding: gzip) and without
# gzip; CPU per scrape (utime+stime from /proc/PID/stat ÷ requests), which for the
# uncached lookout and node_exporter is the CPU per collection; CPU per sample served;
# idle and post-load VmRSS; lookout's binary size and start-to-ready time.
# Prints a markdown report and writes it to bench/results/host-<date>.md.
#
# Usage: bench/host.sh   env: DURATION=10s CONNECTIONS=4 change the load;
#                            LOOKOUT_BIN=path skips the release build and uses that binary.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-4}
ACCEPT='text/plain;version=0.0.4'
RESULTS="$ROOT/bench/results/host-$(date +%F).md"
mkdir -p "$ROOT/bench/results"


# --- peers ----------------------------------------------------------------------------
need wrk:wrk prometheus-node-exporter:prometheus-node-exporter curl:curl

# --- builds ---------------------------------------------------------------------------
build_lookout
log "building bench/bare-hyper (release)"
cargo build --release --quiet --manifest-path "$ROOT/bench/bare-hyper/Cargo.toml"
BARE_BIN="$ROOT/bench/bare-hyper/target/release/bare-hyper"

# --- helpers --------------------------------------------------------------------------
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT



# Waits until GET $2 on port $1 answers 200 (at most 10 s); prints the ms it took since $3
# (a `date +%s%N` timestamp).
ready_ms() {
    local port=$1 path=$2 started=$3 deadline=$((SECONDS + 10))
    until [[ $(http_status "$port" "$path") == 200 ]]; do
        ((SECONDS < deadline)) || die "nothing answered 200 on :$port$path within 10 s"
        sleep 0.001
    done
    echo $((($(date +%s%N) - started) / 1000000))
}



# --- start the servers ----------------------------------------------------------------
cat >"$WORK/lookout.yaml" <<'EOF'
host:
  enabled: true
EOF
mkdir -p "$WORK/state"
LOOKOUT_PORT=$(free_port)
log "starting lookout on :$LOOKOUT_PORT"
started=$(date +%s%N)
"$LOOKOUT_BIN" --config "$WORK/lookout.yaml" --listen "127.0.0.1:$LOOKOUT_PORT" \
    --state-dir "$WORK/state" --log.level warn >"$WORK/lookout.log" 2>&1 &
LOOKOUT_PID=$!
PIDS+=("$LOOKOUT_PID")
READY_MS=$(ready_ms "$LOOKOUT_PORT" /-/ready "$started")

cat >"$WORK/lookout-uncached.yaml" <<'EOF'
host:
  enabled: true
  max_age: 0s
EOF
mkdir -p "$WORK/state-uncached"
UNCACHED_PORT=$(free_port)
log "starting lookout (host.max_age: 0s) on :$UNCACHED_PORT"
"$LOOKOUT_BIN" --config "$WORK/lookout-uncached.yaml" --listen "127.0.0.1:$UNCACHED_PORT" \
    --state-dir "$WORK/state-uncached" --log.level warn >"$WORK/lookout-uncached.log" 2>&1 &
UNCACHED_PID=$!
PIDS+=("$UNCACHED_PID")
ready_ms "$UNCACHED_PORT" /-/ready "$(date +%s%N)" >/dev/null

NE_PORT=$(free_port)
log "starting node_exporter on :$NE_PORT"
started=$(date +%s%N)
prometheus-node-exporter --no-collector.systemd --web.listen-address="127.0.0.1:$NE_PORT" \
    >"$WORK/node_exporter.log" 2>&1 &
NE_PID=$!
PIDS+=("$NE_PID")
NE_READY_MS=$(ready_ms "$NE_PORT" /metrics "$started")

# lookout's bytes, as Prometheus would get them, for the bare server.
curl -sf -H "Accept: $ACCEPT" "http://127.0.0.1:$LOOKOUT_PORT/metrics" -o "$WORK/metrics.txt"
curl -sf -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' \
    "http://127.0.0.1:$LOOKOUT_PORT/metrics" -o "$WORK/metrics.txt.gz"
gzip -t "$WORK/metrics.txt.gz" 2>/dev/null || die "lookout ignored Accept-Encoding: gzip"
curl -sf -H "Accept: $ACCEPT" "http://127.0.0.1:$NE_PORT/metrics" -o "$WORK/node_exporter.txt"
curl -sf -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' \
    "http://127.0.0.1:$NE_PORT/metrics" -o "$WORK/node_exporter.txt.gz"
BARE_PORT=$(free_port)
log "starting bare-hyper on :$BARE_PORT"
CONTENT_TYPE=$(curl -sf -o /dev/null -w '%{content_type}' -H "Accept: $ACCEPT" \
    "http://127.0.0.1:$LOOKOUT_PORT/metrics")
CONTENT_TYPE=$CONTENT_TYPE "$BARE_BIN" "$WORK/metrics.txt" "$BARE_PORT" "$WORK/metrics.txt.gz" \
    >"$WORK/bare.log" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
ready_ms "$BARE_PORT" /metrics "$(date +%s%N)" >/dev/null

# Idle: one warm-up scrape each, then a second of quiet.
for port in "$LOOKOUT_PORT" "$UNCACHED_PORT" "$NE_PORT" "$BARE_PORT"; do
    curl -sf -o /dev/null -H "Accept: $ACCEPT" "http://127.0.0.1:$port/metrics"
done
curl -sf -H "Accept: $ACCEPT" "http://127.0.0.1:$UNCACHED_PORT/metrics" -o "$WORK/uncached.txt"
sleep 1
SERVERS=(lookout lookout-uncached node_exporter bare-hyper)
declare -A PID=([lookout]=$LOOKOUT_PID [lookout-uncached]=$UNCACHED_PID [node_exporter]=$NE_PID [bare-hyper]=$BARE_PID)
declare -A PORT=([lookout]=$LOOKOUT_PORT [lookout-uncached]=$UNCACHED_PORT [node_exporter]=$NE_PORT [bare-hyper]=$BARE_PORT)
series() { grep -vc '^#' "$1" || true; }
declare -A SAMPLES=([lookout]=$(series "$WORK/metrics.txt") [lookout-uncached]=$(series "$WORK/uncached.txt")
    [node_exporter]=$(series "$WORK/node_exporter.txt") [bare-hyper]=$(series "$WORK/metrics.txt"))
# Host series only (node_*), the basis of "parity of series".
host_series() { grep -c '^node_' "$1" || true; }
declare -A HOST_SAMPLES=([lookout]=$(host_series "$WORK/metrics.txt") [node_exporter]=$(host_series "$WORK/node_exporter.txt"))
declare -A RSS_IDLE RSS_AFTER
for name in "${SERVERS[@]}"; do RSS_IDLE[$name]=$(rss_mb "${PID[$name]}"); done

# --- load -----------------------------------------------------------------------------
declare -A RPS P50 P99 CPU PER_SAMPLE
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
        PER_SAMPLE[$key]=$(awk -v ms="${CPU[$key]}" -v n="${SAMPLES[$name]}" \
            'BEGIN { if (n > 0) printf "%.2f", ms * 1000 / n; else print "n/a" }')
    done
done
for name in "${SERVERS[@]}"; do RSS_AFTER[$name]=$(rss_mb "${PID[$name]}"); done

# --- report ---------------------------------------------------------------------------
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

{
    echo "# Host /metrics benchmark — $(date '+%F %T %Z')"
    echo
    echo "Machine: $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);" \
        "lookout $("$LOOKOUT_BIN" --version 2>/dev/null | head -1 || echo '?');" \
        "$(prometheus-node-exporter --version 2>&1 | head -1 | cut -d' ' -f1-3)."
    echo "Load: \`wrk -t1 -c$CONNECTIONS -d$DURATION --latency -H 'Accept: $ACCEPT'\`" \
        "(+ \`Accept-Encoding: gzip\` in the gzip rows). CPU per scrape = utime+stime delta" \
        "of the server ÷ requests. bare-hyper serves lookout's own bytes (pre-compressed for gzip)."
    echo
    echo "\`lookout-uncached\` runs with \`host.max_age: 0s\`: every scrape collects, so its CPU per"
    echo "scrape is its CPU per collection, comparable with node_exporter's (which always collects)."
    echo "The cached \`lookout\` collects at most once a second whatever the scrape rate."
    echo "CPU per sample = CPU per scrape ÷ samples in one body (all of them, not only node_*)."
    echo
    echo "| server | encoding | req/s | p50 ms | p99 ms | CPU ms/scrape | CPU µs/sample |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for encoding in gzip identity; do
        for name in "${SERVERS[@]}"; do
            key="$name/$encoding"
            echo "| $name | $encoding | ${RPS[$key]} | ${P50[$key]} | ${P99[$key]} | ${CPU[$key]} | ${PER_SAMPLE[$key]} |"
        done
    done
    echo
    echo "| ratio | gzip | identity | target |"
    echo "|---|---:|---:|---|"
    echo "| lookout uncached ÷ node_exporter, CPU per collection | $(ratio "${CPU[lookout-uncached/gzip]}" "${CPU[node_exporter/gzip]}") |" \
        "$(ratio "${CPU[lookout-uncached/identity]}" "${CPU[node_exporter/identity]}") | ≤ 0.20 at parity of series |"
    echo "| lookout uncached ÷ node_exporter, CPU per sample | $(ratio "${PER_SAMPLE[lookout-uncached/gzip]}" "${PER_SAMPLE[node_exporter/gzip]}") |" \
        "$(ratio "${PER_SAMPLE[lookout-uncached/identity]}" "${PER_SAMPLE[node_exporter/identity]}") | |"
    echo "| lookout uncached ÷ node_exporter, req/s | $(ratio "${RPS[lookout-uncached/gzip]}" "${RPS[node_exporter/gzip]}") |" \
        "$(ratio "${RPS[lookout-uncached/identity]}" "${RPS[node_exporter/identity]}") | |"
    echo "| lookout cached ÷ node_exporter, req/s | $(ratio "${RPS[lookout/gzip]}" "${RPS[node_exporter/gzip]}") |" \
        "$(ratio "${RPS[lookout/identity]}" "${RPS[node_exporter/identity]}") | ≥ 10 |"
    echo "| lookout cached ÷ node_exporter, CPU/scrape | $(ratio "${CPU[lookout/gzip]}" "${CPU[node_exporter/gzip]}") |" \
        "$(ratio "${CPU[lookout/identity]}" "${CPU[node_exporter/identity]}") | ≤ 0.10 |"
    echo "| lookout cached ÷ bare hyper, req/s | $(ratio "${RPS[lookout/gzip]}" "${RPS[bare-hyper/gzip]}") |" \
        "$(ratio "${RPS[lookout/identity]}" "${RPS[bare-hyper/identity]}") | ≥ 0.70 |"
    echo
    echo "| footprint | lookout | node_exporter | bare-hyper | target (lookout) |"
    echo "|---|---:|---:|---:|---|"
    echo "| idle RSS MB (after one scrape) | ${RSS_IDLE[lookout]} | ${RSS_IDLE[node_exporter]} | ${RSS_IDLE[bare-hyper]} | < 15 |"
    echo "| RSS after load MB (uncached lookout: ${RSS_AFTER[lookout-uncached]}) | ${RSS_AFTER[lookout]} | ${RSS_AFTER[node_exporter]} | ${RSS_AFTER[bare-hyper]} | |"
    echo "| binary MB | $(mb "$(stat -c %s "$LOOKOUT_BIN")") |" \
        "$(mb "$(stat -c %s "$(command -v prometheus-node-exporter)")") | $(mb "$(stat -c %s "$BARE_BIN")") | < 20 |"
    echo "| start to ready ms | $READY_MS | $NE_READY_MS | | < 100 |"
    echo "| samples served (node_* of them) | ${SAMPLES[lookout]} (${HOST_SAMPLES[lookout]}) | ${SAMPLES[node_exporter]} (${HOST_SAMPLES[node_exporter]}) | | |"
    echo "| node_* families served | $(grep -c '^# TYPE node_' "$WORK/metrics.txt" || true) | $(grep -c '^# TYPE node_' "$WORK/node_exporter.txt" || true) | | |"
    echo "| body KiB (identity / gzip) | $(kb "$(stat -c %s "$WORK/metrics.txt")") / $(kb "$(stat -c %s "$WORK/metrics.txt.gz")") | $(kb "$(stat -c %s "$WORK/node_exporter.txt")") / $(kb "$(stat -c %s "$WORK/node_exporter.txt.gz")") | | |"
    echo
    echo "Start to ready: spawn → first 200 on \`/-/ready\` (node_exporter: \`/metrics\`), polled every ~1 ms, host-only config."
} | tee "$RESULTS"
log "wrote $RESULTS"
