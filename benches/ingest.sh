#!/usr/bin/env bash
# Ingest over HTTP: `ward up` (release) taking `POST /v1/alerts` (one alert a request) from
# `wrk -t2 -c16 -d10s`, on a private local redis-server (random port, --save '' --appendonly no)
# and on the memory store, with `redis-benchmark -t lpush -P 1` on the same server in the same
# run for reference. Prints requests per second and p99 side by side (the median of
# WARD_INGEST_RUNS runs, default 3) and the CPU time per request of Ward and of redis-server.
# The target line is the ingest tier: `ward up --role ingest --threads 1` (on this 2-core box
# wrk and Redis take the other core; one runtime thread spends less CPU waking another). The
# next line is the all-in-one default (`ward up`, one thread per core, the router running too:
# no channels, so each alert is routed to none and acked), sharing the same two cores.
#
#   bash benches/ingest.sh
#   WARD_INGEST_DURATION=20s WARD_INGEST_CONNECTIONS=32 bash benches/ingest.sh
#   WARD_BIN=/tmp/ward-old bash benches/ingest.sh        # another build, for a before/after
#
# Target: ≥ 30 000 req/s with p99 ≤ 5 ms on Redis. Needs redis-server, redis-cli,
# redis-benchmark and wrk (apt-get install -y redis-server wrk).
set -euo pipefail

DURATION=${WARD_INGEST_DURATION:-10s}
CONNECTIONS=${WARD_INGEST_CONNECTIONS:-16}
THREADS=${WARD_INGEST_THREADS:-2}
PARTITIONS=${WARD_INGEST_PARTITIONS:-1}
# Single runs swing by ±15 % on a shared 2-core machine: each figure is the median of RUNS.
RUNS=${WARD_INGEST_RUNS:-3}

cd "$(dirname "$0")/.."
for tool in redis-server redis-cli redis-benchmark wrk curl; do
    command -v "$tool" >/dev/null || { echo "ingest: $tool is not installed (apt-get install -y $tool)" >&2; exit 1; }
done

# WARD_BIN measures another build (e.g. an older commit's) instead of building this one.
if [[ -n ${WARD_BIN:-} ]]; then
    BIN=$WARD_BIN
else
    cargo build --release --bin ward
    BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/ward
    [[ $BIN == /* ]] || BIN=$PWD/$BIN
fi

WORK=$(mktemp -d)
REDIS_PID=
WARD_PID=
cleanup() {
    for pid in $WARD_PID $REDIS_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=benches/lib.sh
BENCH=ingest
source "$PWD/benches/lib.sh"

cat >"$WORK/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"labels":{"alertname":"DiskFull","instance":"db-7:9100","team":"dba"},' ..
  '"annotations":{"summary":"/var is 95% full"},"severity":"critical"}'
EOF

# CPU seconds (user + system) of process $1 so far.
cpu_of() {
    awk '{ sub(/.*\) /, ""); print ($12 + $13) / 100 }' "/proc/$1/stat"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# $1 label, $2 backend, then `ward up`'s own arguments: starts it, runs wrk, prints one line.
run_ward() {
    local label=$1 backend=$2 port
    shift 2
    port=$(free_port)
    cat >"$WORK/ward.toml" <<EOF
[store]
backend = "$backend"
partitions = $PARTITIONS
[ingest]
bind = "127.0.0.1:$port"
queue_cap = 100000000
rate_limit = { count = 100000000, period_ms = 1000, burst = 100000000 }
EOF
    # Each run starts on an empty store, as the first did: a queue no router drains would
    # otherwise grow from run to run.
    [[ $backend == redis ]] && redis-cli -p "$PORT" flushall >/dev/null
    local args=(--config "$WORK/ward.toml" up "$@")
    [[ $backend == redis ]] && args=(--config "$WORK/ward.toml" --redis "$URL" up "$@")
    "$BIN" "${args[@]}" >"$WORK/ward.out" 2>"$WORK/ward.err" &
    WARD_PID=$!
    wait_for 30 curl -sf "http://127.0.0.1:$port/healthz" || {
        echo "ingest: ward up did not answer" >&2
        cat "$WORK/ward.err" >&2
        exit 1
    }
    # Warm up the connections and the allocator.
    wrk -t1 -c4 -d1s -s "$WORK/post.lua" "http://127.0.0.1:$port/v1/alerts" >/dev/null
    local ward_cpu0 redis_cpu0=0 ward_cpu1 redis_cpu1=0
    [[ $backend == redis ]] && redis-cli -p "$PORT" config resetstat >/dev/null
    ward_cpu0=$(cpu_of "$WARD_PID")
    [[ $backend == redis ]] && redis_cpu0=$(cpu_of "$REDIS_PID")
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" \
        "http://127.0.0.1:$port/v1/alerts" >"$WORK/wrk.out"
    ward_cpu1=$(cpu_of "$WARD_PID")
    [[ $backend == redis ]] && redis_cpu1=$(cpu_of "$REDIS_PID")
    if [[ $backend == redis && -n ${WARD_INGEST_COMMANDSTATS:-} ]]; then
        # Where Redis's time went: the commands by total µs.
        redis-cli -p "$PORT" info commandstats | tr -d '\r' | grep '^cmdstat' |
            awk -F'[:=,]' '{ print $5, $3, $7, $1 }' | sort -rn | head -12 >&2
    fi
    kill "$WARD_PID"
    wait "$WARD_PID" 2>/dev/null || true
    WARD_PID=
    # One JSON line per run; `summary` prints the median run of each label.
    python3 - "$label" "$WORK/wrk.out" "$ward_cpu0" "$ward_cpu1" "$redis_cpu0" "$redis_cpu1" >>"$WORK/runs.jsonl" <<'EOF'
import json, re, sys
label, path = sys.argv[1], sys.argv[2]
w0, w1, r0, r1 = map(float, sys.argv[3:7])
text = open(path).read()
total = int(re.search(r"(\d+) requests in", text).group(1))
def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(json.dumps({
    "label": label,
    "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
    "p50": ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", text).groups()),
    "p99": ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups()),
    "ward_us": (w1 - w0) / total * 1e6,
    "redis_us": (r1 - r0) / total * 1e6 if r1 > r0 else None,
    "non2xx": int(errors.group(1)) if errors else 0,
}))
EOF
}

# The median run (by rate) of each label, with the spread of the rates.
summary() {
    python3 - "$WORK/runs.jsonl" <<'EOF'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
for label in dict.fromkeys(r["label"] for r in runs):
    mine = sorted((r for r in runs if r["label"] == label), key=lambda r: r["rate"])
    m = mine[len(mine) // 2]
    cpu = f"Ward {m['ward_us']:5.1f} µs" + (f", Redis {m['redis_us']:5.1f} µs" if m["redis_us"] else "")
    spread = f" (runs {mine[0]['rate']:.0f}–{mine[-1]['rate']:.0f})" if len(mine) > 1 else ""
    bad = f", {m['non2xx']} non-2xx" if m["non2xx"] else ""
    print(f"  {label:<26} {m['rate']:>9.0f} req/s  p50 {m['p50']:6.2f} ms  p99 {m['p99']:6.2f} ms"
          f"  CPU per request: {cpu}{bad}{spread}")
EOF
}

start_redis
echo "ingest over HTTP: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, one alert per POST /v1/alerts, $PARTITIONS partition(s), median of $RUNS runs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# The configurations take turns, so a change in the machine's load reaches each alike.
for ((run = 1; run <= RUNS; run++)); do
    run_ward "ingest tier, Redis" redis --role ingest --threads 1
    run_ward "all in one, Redis" redis
    run_ward "memory store, one thread" memory --threads 1
done
summary
redis-benchmark -p "$PORT" -t lpush -P 1 -n 200000 --csv 2>/dev/null >"$WORK/lpush.csv"
python3 - "$WORK/lpush.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head, row = rows[0], rows[-1]
get = lambda name: float(row[head.index(name)])
label = "redis-benchmark LPUSH -P 1"
print(f"  {label:<26} {get('rps'):>9.0f} req/s  p50 {get('p50_latency_ms'):6.2f} ms"
      f"  p99 {get('p99_latency_ms'):6.2f} ms  (50 clients, same server)")
EOF
echo "  target on Redis: ≥ 30000 req/s with p99 ≤ 5 ms; load average after $(cut -d' ' -f1-3 /proc/loadavg)"
