#!lua flags=no-writes
-- The alerts of one partition seen at or after a time, newest first: no writes.
-- KEYS: seen (hash fingerprint -> JSON), seen:at (zset fingerprint -> last seen ms)
-- ARGV: since ms, max entries
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[1], unpack(ids))
