-- Compare-and-delete one flag: clear it only while it is still exactly the value read (so an
-- expired flag is not lifted over a newer one an operator has just set).
-- KEYS: flags hash; ARGV: name, the JSON as read. Returns 1 if cleared.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
