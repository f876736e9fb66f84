-- Forget what a zset scores below a bound, from the zset and its hash: at most ARGV[2] per call.
-- KEYS: hash (member -> record), zset (member -> score)
-- ARGV: exclusive upper bound, max members
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return 0 end
redis.call('HDEL', KEYS[1], unpack(ids))
redis.call('ZREM', KEYS[2], unpack(ids))
return #ids
