-- Lease up to ARGV[1] ids from the right (oldest) end of the queue until ARGV[2], fenced by
-- token ARGV[3]: the leases zset holds '<token>|<id>' → deadline, so one member is both the
-- lease and its fence.
-- KEYS: queue, leases. Returns the ids; the client reads their bodies with a plain HMGET, as
-- Redis's Lua copies and hashes every byte of each string it is handed.
local ids = redis.call('RPOP', KEYS[1], ARGV[1])
if not ids then return {} end
local scores, prefix, deadline = {}, ARGV[3] .. '|', ARGV[2]
for n = 1, #ids do
  scores[2 * n - 1] = deadline; scores[2 * n] = prefix .. ids[n]
end
redis.call('ZADD', KEYS[2], unpack(scores))
return ids
