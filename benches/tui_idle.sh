#!/usr/bin/env bash
# Idle cost of the control room: `ward tui` (release build) attached to a private redis-server,
# in a detached 200×60 tmux pane, refreshing every second (tui.refresh_ms = 1000, the default).
# After a settling time it samples /proc/<pid>/stat (utime + stime) and /proc/<pid>/status
# (VmRSS) and prints the CPU used as a percentage of one core and the resident memory.
#
# Runs: an idle (empty) Redis; a Redis holding WARD_IDLE_DLQ (100 000) DLQ entries on the
# Overview; the same with the DLQ browser open (its page is then read on every refresh).
#
#   bash benches/tui_idle.sh                 # 5 s settle, 60 s sample per run
#   WARD_IDLE_SECONDS=20 bash benches/tui_idle.sh
#
# Targets: ≤ 0.5 % of one core, ≤ 25 MB RSS. Needs redis-server, redis-cli and tmux.
set -euo pipefail

SETTLE_S=${WARD_IDLE_SETTLE:-5}
SAMPLE_S=${WARD_IDLE_SECONDS:-60}
DLQ_ENTRIES=${WARD_IDLE_DLQ:-100000}
CPU_TARGET=0.5
RSS_TARGET_MB=25

cd "$(dirname "$0")/.."
for tool in redis-server redis-cli tmux; do
    command -v "$tool" >/dev/null || { echo "tui_idle: $tool is not installed" >&2; exit 1; }
done

cargo build --release --bin ward
BIN=$PWD/target/release/ward
[[ -x $BIN ]] || { echo "tui_idle: no $BIN" >&2; exit 1; }

WORK=$(mktemp -d)
SOCK=ward-idle-$$          # a private tmux server, so no one else's sessions are touched
REDIS_PID=
cleanup() {
    tmux -L "$SOCK" kill-server 2>/dev/null || true
    rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$SOCK"
    if [[ -n $REDIS_PID ]]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A config of its own: nothing from the user's XDG config, the refresh interval explicit. The
# backend is named too: `--redis` alone sets store.redis_url but leaves store.backend = memory,
# and the control room would then watch an empty in-process store.
cat >"$WORK/ward.toml" <<'EOF'
[store]
backend = "redis"

[tui]
refresh_ms = 1000
EOF

HZ=$(getconf CLK_TCK)

# shellcheck source=benches/lib.sh
BENCH=tui_idle
source "$PWD/benches/lib.sh"

cpu_ticks() { # utime + stime of pid $1 (fields 14 and 15; the name in parentheses may hold spaces)
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
redis_commands() { redis-cli -p "$PORT" info stats | awk -F: '/^total_commands_processed:/ { print $2 + 0 }'; }

# One run: $1 label, $2 keys to send once the dashboard is up ('' for none).
measure() {
    local label=$1 keys=$2 pid screen
    tmux -L "$SOCK" new-session -d -s ward -x 200 -y 60 \
        "exec '$BIN' --config '$WORK/ward.toml' tui --redis '$URL' 2>'$WORK/ward.err'"
    pid=$(tmux -L "$SOCK" display-message -p -t ward '#{pane_pid}')
    wait_for 10 grep -qx ward "/proc/$pid/comm" \
        || { echo "tui_idle: ward did not start" >&2; cat "$WORK/ward.err" >&2; exit 1; }
    wait_for 10 sh -c "tmux -L '$SOCK' capture-pane -p -t ward | grep -q ' WARD '" \
        || { echo "tui_idle: no dashboard on screen" >&2; exit 1; }
    if ! tmux -L "$SOCK" capture-pane -p -t ward | head -1 | grep -q "redis redis://127.0.0.1:$PORT"; then
        echo "tui_idle: the control room is not attached to this Redis:" >&2
        tmux -L "$SOCK" capture-pane -p -t ward | head -1 >&2
        exit 1
    fi
    if [[ -n $keys ]]; then
        tmux -L "$SOCK" send-keys -t ward "$keys"
    fi
    sleep "$SETTLE_S"
    screen=$(tmux -L "$SOCK" capture-pane -p -t ward)
    if grep -q 'Waiting for the store' <<<"$screen"; then
        echo "tui_idle: the control room did not reach Redis:" >&2
        echo "$screen" >&2
        exit 1
    fi

    local t0 t1 ticks0 ticks1 cmds0 cmds1 samples=() i
    cmds0=$(redis_commands)
    ticks0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    for ((i = 0; i < SAMPLE_S; i++)); do
        sleep 1
        samples+=("$(rss_kb "$pid")")
    done
    ticks1=$(cpu_ticks "$pid")
    t1=$(date +%s.%N)
    cmds1=$(redis_commands)

    printf '%s\n' "${samples[@]}" | awk -v label="$label" -v t0="$t0" -v t1="$t1" \
        -v d="$((ticks1 - ticks0))" -v hz="$HZ" \
        -v cmds="$((cmds1 - cmds0))" -v cpu_target="$CPU_TARGET" -v rss_target="$RSS_TARGET_MB" '
        { sum += $1; if ($1 > max) max = $1; n++ }
        END {
            secs = t1 - t0
            cpu = d / hz / secs * 100
            mean = sum / n / 1024; peak = max / 1024
            printf "  %-38s CPU %5.2f %% of a core (%d ticks in %.1f s)   RSS mean %5.1f MB, max %5.1f MB   Redis %5.1f commands/s   %s\n",
                label, cpu, d, secs, mean, peak, (cmds - 1) / secs,
                (cpu <= cpu_target && peak <= rss_target) ? "within target" : "OVER TARGET"
        }'

    tmux -L "$SOCK" send-keys -t ward q
    wait_for 10 sh -c "! kill -0 $pid 2>/dev/null" || true
    tmux -L "$SOCK" kill-session -t ward 2>/dev/null || true
}

start_redis
echo "ward tui idle, 200×60 tmux pane, refresh 1 s, ${SETTLE_S} s settle then ${SAMPLE_S} s sampled" \
    "(targets: ≤ ${CPU_TARGET} % of a core, ≤ ${RSS_TARGET_MB} MB RSS); Redis on port $PORT"
measure "idle Redis, Overview" ""
fill_dlq "$DLQ_ENTRIES"
measure "$DLQ_ENTRIES DLQ entries, Overview" ""
measure "$DLQ_ENTRIES DLQ entries, DLQ browser open" "3"
