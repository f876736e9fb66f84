# Shared by the shell benchmarks: a private redis-server and a DLQ filled in the store's layout.
# Source it after setting BENCH (the script's name for messages) and WORK (a scratch directory);
# start_redis sets PORT, URL and REDIS_PID.

# Wait up to $1 seconds for the command in "$@" to succeed.
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

start_redis() {
    local attempt
    for attempt in 1 2 3 4 5; do
        PORT=$((20000 + RANDOM % 40000))
        redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --loglevel warning >"$WORK/redis.log" 2>&1 &
        REDIS_PID=$!
        if wait_for 10 redis-cli -p "$PORT" ping && kill -0 "$REDIS_PID" 2>/dev/null; then
            URL=redis://127.0.0.1:$PORT/
            return 0
        fi
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=
    done
    echo "$BENCH: redis-server did not start" >&2
    exit 1
}

# $1 entries in the DLQ of `delivery` (profile ward, prefix ward, one partition), written in the
# store's layout (bodies '<attempts>:<replays>:<envelope JSON>', DlqMeta JSON, the order-key zset),
# 10 000 per script call.
fill_dlq() {
    local total=$1 now first batch=10000
    now=$(date +%s%3N)
    cat >"$WORK/fill.lua" <<'EOF'
local bodies, meta, dlq = KEYS[1], KEYS[2], KEYS[3]
local first, n, now = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local classes = {'http_500', 'timeout', 'http_429', 'tls'}
local channels = {'slack-ops', 'pager', 'webhook-ci', 'mail'}
for i = first, first + n - 1 do
  local id = string.format('%026d', i)
  local key = now .. ':' .. id
  local class, channel = classes[i % 4 + 1], channels[i % 4 + 1]
  redis.call('HSET', bodies, id, '1:0:{"id":"' .. id .. '","idempotency_key":"' .. id ..
    '","tenant":"acme","payload":{"n":' .. i .. '},"created_at_ms":' .. now .. '}')
  redis.call('HSET', meta, id, '{"id":"' .. id .. '","queue":"delivery","tenant":"acme",' ..
    '"error_class":"' .. class .. '","error_message":"boom","stage":"deliver","channel":"' ..
    channel .. '","attempts":1,"replays":0,"first_failure_ms":' .. now ..
    ',"last_failure_ms":' .. now .. ',"key":"' .. key .. '"}')
  redis.call('ZADD', dlq, 0, key)
end
return n
EOF
    for ((first = 0; first < total; first += batch)); do
        local n=$((total - first < batch ? total - first : batch))
        redis-cli -p "$PORT" --eval "$WORK/fill.lua" \
            'ward:{p0}:env' 'ward:{p0}:dlqmeta' 'ward:{p0}:dlq:delivery' , \
            "$first" "$n" "$now" >/dev/null
    done
    local have
    have=$(redis-cli -p "$PORT" zcard 'ward:{p0}:dlq:delivery')
    [[ $have == "$total" ]] || { echo "$BENCH: DLQ holds $have, not $total" >&2; exit 1; }
}
