-- Delete an aggregation group and its schedule if its version is still the one read.
-- KEYS: group hash, due zset
-- ARGV: expected version, group id
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
