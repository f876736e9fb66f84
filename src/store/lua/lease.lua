-- Lease up to ARGV[1] ids from the right (oldest) end of the queue until ARGV[2], fenced by token ARGV[3].
-- KEYS: queue, leases, owners, bodies, attempts, replays
-- Returns flat quads: id, body ('' if missing), attempts, replays.
local ids = redis.call('RPOP', KEYS[1], ARGV[1])
if not ids then return {} end
local scores, owners = {}, {}
for _, id in ipairs(ids) do
  scores[#scores + 1] = ARGV[2]; scores[#scores + 1] = id
  owners[#owners + 1] = id; owners[#owners + 1] = ARGV[3]
end
redis.call('ZADD', KEYS[2], unpack(scores))
redis.call('HSET', KEYS[3], unpack(owners))
local bodies = redis.call('HMGET', KEYS[4], unpack(ids))
local attempts = redis.call('HMGET', KEYS[5], unpack(ids))
local replays = redis.call('HMGET', KEYS[6], unpack(ids))
local out = {}
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = bodies[i] or ''
  out[#out + 1] = attempts[i] or '0'
  out[#out + 1] = replays[i] or '0'
end
return out
