-- Lease up to ARGV[1] ids from the right (oldest) end of the queue until ARGV[2], fenced by
-- token ARGV[3]: the leases zset holds '<token>|<id>' → deadline, so one member is both the
-- lease and its fence.
-- KEYS: queue, leases, bodies. Returns (id, stored body) pairs, a body nil when none is stored:
-- one round trip for the lease and its bodies, whose copies through Lua cost Redis less than a
-- second command and reply.
local ids = redis.call('RPOP', KEYS[1], ARGV[1])
if not ids then return {} end
local scores, prefix, deadline = {}, ARGV[3] .. '|', ARGV[2]
for n = 1, #ids do
  scores[2 * n - 1] = deadline; scores[2 * n] = prefix .. ids[n]
end
redis.call('ZADD', KEYS[2], unpack(scores))
local bodies = redis.call('HMGET', KEYS[3], unpack(ids))
local out = {}
for n = 1, #ids do
  out[2 * n - 1] = ids[n]; out[2 * n] = bodies[n]
end
return out
