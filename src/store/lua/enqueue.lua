-- Enqueue envelopes into one partition; an id already stored (or earlier in this call) is
-- skipped, so retrying an enqueue whose reply was lost never duplicates an item.
-- KEYS: queue, bodies; ARGV: id, stored body ('<attempts>:<replays>:<json>'), id, body, …
-- Returns how many were added.
-- Variadic commands, one per structure per batch: a redis.call costs more than its work.
local count = #ARGV / 2
if count < 1 then return 0 end
local ids = {}
for n = 1, count do ids[n] = ARGV[2 * n - 1] end
local stored = redis.call('HMGET', KEYS[2], unpack(ids))
local bodies, fresh, seen, f = {}, {}, {}, 0
for n = 1, count do
  local id = ids[n]
  if not stored[n] and not seen[id] then
    seen[id] = true
    f = f + 1
    bodies[2 * f - 1] = id; bodies[2 * f] = ARGV[2 * n]
    fresh[f] = id
  end
end
if f == 0 then return 0 end
redis.call('HSET', KEYS[2], unpack(bodies))
redis.call('LPUSH', KEYS[1], unpack(fresh))
return f
