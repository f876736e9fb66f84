-- Enqueue envelopes into one partition; an id already stored (or earlier in this call) is
-- skipped, so retrying an enqueue whose reply was lost never duplicates an item.
-- KEYS: queue, bodies, attempts; ARGV: id, body, id, body, …  Returns how many were added.
-- Variadic commands, one per structure per batch: a redis.call costs more than its work.
local ids = {}
for i = 1, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return 0 end
local stored = redis.call('HMGET', KEYS[2], unpack(ids))
local bodies, zeros, fresh, seen = {}, {}, {}, {}
for n, id in ipairs(ids) do
  if not stored[n] and not seen[id] then
    seen[id] = true
    bodies[#bodies + 1] = id; bodies[#bodies + 1] = ARGV[2 * n]
    zeros[#zeros + 1] = id; zeros[#zeros + 1] = 0
    fresh[#fresh + 1] = id
  end
end
if #fresh == 0 then return 0 end
redis.call('HSET', KEYS[2], unpack(bodies))
redis.call('HSET', KEYS[3], unpack(zeros))
redis.call('LPUSH', KEYS[1], unpack(fresh))
return #fresh
