-- Push the ids of one enqueue that the partition does not hold yet; runs first in a MULTI whose
-- HSETNX commands then store the bodies, so the bodies never pass through Lua (Redis's Lua
-- copies and hashes every byte of each string it is handed). An id already stored (or earlier
-- in this call) is skipped, so retrying an enqueue whose reply was lost never duplicates an item.
-- KEYS: queue, bodies; ARGV: ids. Returns how many were added.
local count = #ARGV
if count < 1 then return 0 end
local stored = redis.call('HMGET', KEYS[2], unpack(ARGV))
local fresh, seen, f = {}, {}, 0
for n = 1, count do
  local id = ARGV[n]
  if not stored[n] and not seen[id] then
    seen[id] = true
    f = f + 1
    fresh[f] = id
  end
end
if f == 0 then return 0 end
redis.call('LPUSH', KEYS[1], unpack(fresh))
return f
