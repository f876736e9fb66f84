-- Write an aggregation group if its version is still the one read, and schedule its flush.
-- KEYS: group hash (v = version, s = state JSON), due zset
-- ARGV: expected version (0 = must not exist), state JSON, next flush ms, group id
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', current + 1, 's', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
