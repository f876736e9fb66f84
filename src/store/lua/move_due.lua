-- Move up to ARGV[2] members scored <= ARGV[1] out of a zset into a queue.
-- KEYS: source zset, queue, owners, attempts
-- ARGV[3] = 'promote' (retries: to the back of the line) | 'recover' (expired leases: to the
-- front, lease owner dropped, attempts + 1). Returns how many moved.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(ids))
if ARGV[3] == 'recover' then
  redis.call('HDEL', KEYS[3], unpack(ids))
  -- Pushed in reverse so the earliest deadline is leased first, the batch in its old order.
  for i = #ids, 1, -1 do
    redis.call('RPUSH', KEYS[2], ids[i])
    redis.call('HINCRBY', KEYS[4], ids[i], 1)
  end
else
  redis.call('LPUSH', KEYS[2], unpack(ids))
end
return #ids
