-- Claim the groups of one partition due at or before now: each is re-scheduled to a hold time
-- so no other flusher takes it meanwhile.
-- KEYS: due zset
-- ARGV: now ms, hold-until ms, max
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
end
return ids
