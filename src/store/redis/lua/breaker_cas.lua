-- Compare-and-set one breaker. KEYS: states hash, versions hash; ARGV: name, expected, JSON.
local current = redis.call('HGET', KEYS[2], ARGV[1]) or '0'
if current ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], tostring(tonumber(ARGV[2]) + 1))
return 1
