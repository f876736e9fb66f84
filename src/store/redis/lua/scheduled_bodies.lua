#!lua flags=no-writes
-- The due-soonest scheduled entries of one partition, with their stored bodies: no writes.
-- KEYS: scheduled, bodies
-- ARGV: max entries
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
