-- Settle leased items, each only if its lease is still held by the presented token.
-- KEYS: leases, owners, bodies, attempts, replays, meta, scheduled, dlq, queue
-- ARGV[1] = op: 'ack' | 'extend' | 'retry' | 'dlq' | 'defer' | 'release';
-- ARGV[2] = deadline (extend) or '';
-- then per item: id, token, a, b  (retry: a = due ms, b = body; dlq: a = order key, b = meta
-- JSON; defer: a = due ms). Defer and release count no attempt.
-- Returns the ids whose lease was not held (stale).
local op, stale = ARGV[1], {}
for i = 3, #ARGV, 4 do
  local id, token, a, b = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('HGET', KEYS[2], id) == token then
    if op == 'extend' then
      redis.call('ZADD', KEYS[1], ARGV[2], id)
    else
      redis.call('ZREM', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
      if op == 'ack' then
        redis.call('HDEL', KEYS[3], id)
        redis.call('HDEL', KEYS[4], id)
        redis.call('HDEL', KEYS[5], id)
        redis.call('HDEL', KEYS[6], id)
      elseif op == 'retry' then
        redis.call('HSET', KEYS[3], id, b)
        redis.call('HINCRBY', KEYS[4], id, 1)
        redis.call('ZADD', KEYS[7], a, id)
      elseif op == 'dlq' then
        redis.call('HSET', KEYS[6], id, b)
        redis.call('ZADD', KEYS[8], 0, a)
      elseif op == 'defer' then
        redis.call('ZADD', KEYS[7], a, id)
      elseif op == 'release' then
        redis.call('RPUSH', KEYS[9], id)
      end
    end
  else
    stale[#stale + 1] = id
  end
end
return stale
