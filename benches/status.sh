#!/usr/bin/env bash
# Wall time of `ward status --format json` (release build, a new process each run, as cron or a
# monitoring agent calls it) against a private local redis-server, measured with hyperfine:
# an empty store, then one holding WARD_STATUS_DLQ (100 000) DLQ entries, 60 audit records, an
# override and a forced breaker. Also times `ward check` on the same store, and
# `ward --profile mutt status` on a MUTT layout (tests/fixtures/mutt/seed.sh, in database 1)
# whose forwarder DLQ holds as many entries, beside 10 000 other MUTT keys.
#
#   bash benches/status.sh
#   WARD_STATUS_RUNS=500 bash benches/status.sh
#
# Target: ≤ 20 ms per `ward status --format json`. Needs redis-server, redis-cli, hyperfine.
set -euo pipefail

RUNS=${WARD_STATUS_RUNS:-200}
DLQ_ENTRIES=${WARD_STATUS_DLQ:-100000}
TARGET_MS=20

cd "$(dirname "$0")/.."
for tool in redis-server redis-cli hyperfine python3; do
    command -v "$tool" >/dev/null || { echo "status: $tool is not installed (apt-get install -y $tool)" >&2; exit 1; }
done

cargo build --release --bin ward
BIN=$PWD/target/release/ward

WORK=$(mktemp -d)
REDIS_PID=
cleanup() {
    if [[ -n $REDIS_PID ]]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=benches/lib.sh
BENCH=status
source "$PWD/benches/lib.sh"

printf '[store]\nbackend = "redis"\n' >"$WORK/ward.toml"

# $1 label, $2 the command, $3 extra hyperfine options: mean, p50, p99 and max from its JSON.
measure() {
    # shellcheck disable=SC2086
    hyperfine -N --style none --warmup 10 --runs "$RUNS" ${3:-} --export-json "$WORK/run.json" "$2" \
        >/dev/null 2>"$WORK/hyperfine.err" || { cat "$WORK/hyperfine.err" >&2; exit 1; }
    python3 - "$1" "$WORK/run.json" "$TARGET_MS" <<'EOF'
import json, sys
label, path, target = sys.argv[1], sys.argv[2], float(sys.argv[3])
times = sorted(t * 1000 for t in json.load(open(path))["results"][0]["times"])
pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
mean = sum(times) / len(times)
print(f"{label:<44} mean {mean:6.2f} ms  p50 {pick(0.5):6.2f}  p99 {pick(0.99):6.2f}  max {times[-1]:6.2f}"
      f"  ({len(times)} runs, target {target:.0f} ms: {'met' if mean <= target else 'MISSED'})")
EOF
}

start_redis
WARD=("$BIN" --config "$WORK/ward.toml" --redis "$URL")
"${WARD[@]}" status --format json >/dev/null || { echo "status: ward status failed" >&2; exit 1; }
measure "status --format json, empty store" "${WARD[*]} status --format json"

fill_dlq "$DLQ_ENTRIES"
for i in $(seq 1 30); do
    "${WARD[@]}" shed dlq --reason "bench $i" --for 1h --yes >/dev/null
    "${WARD[@]}" shed off --yes >/dev/null
done
"${WARD[@]}" breaker open slack-ops --reason bench --for 1h --yes >/dev/null
"${WARD[@]}" stop on --channel pager --reason bench --yes >/dev/null
measure "status --format json, $DLQ_ENTRIES DLQ entries" "${WARD[*]} status --format json"
measure "status (text), $DLQ_ENTRIES DLQ entries" "${WARD[*]} status"
# Its exit code is the verdict (1: the forced breaker and the stopped channel warn).
measure "check, $DLQ_ENTRIES DLQ entries" "${WARD[*]} check" --ignore-failure
printf 'round trips per status read: %s\n' \
    "$("${WARD[@]}" status --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sources"][0]["round_trips"])')"

# A MUTT deployment in the same server's database 1: the seeded layout, the forwarder DLQ
# filled, and 10 000 unhandled-message counters so the SCAN that finds pods and settings has
# work to do.
MUTT_URL=redis://127.0.0.1:$PORT/1
bash tests/fixtures/mutt/seed.sh "$MUTT_URL" >/dev/null
python3 - "$DLQ_ENTRIES" <<'EOF' | redis-cli -p "$PORT" -n 1 --pipe >/dev/null
import sys
n = int(sys.argv[1])
def cmd(*args):
    out = [f"*{len(args)}\r\n"]
    for a in args:
        out.append(f"${len(a.encode())}\r\n{a}\r\n")
    return "".join(out)
w = sys.stdout.write
for i in range(n):
    w(cmd("LPUSH", "mutt:dlq:moog", f'{{"api_key": "k", "hostname": "h{i}", "message_body": "m", "_moog_retry_count": 6}}'))
for i in range(10000):
    w(cmd("SET", f"mutt:unhandled:h{i}:0123456789abcdef", "1"))
EOF
MUTT=("$BIN" --config "$WORK/ward.toml" --profile mutt --redis "$MUTT_URL")
measure "mutt status --format json, $DLQ_ENTRIES DLQ entries" "${MUTT[*]} status --format json"
printf 'round trips per MUTT status read: %s (SCAN steps over %s keys, then one read script)\n' \
    "$("${MUTT[@]}" status --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sources"][0]["round_trips"])')" \
    "$(redis-cli -p "$PORT" -n 1 dbsize)"
