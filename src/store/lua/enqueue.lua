-- Push the ids of one partition's new items, then (when forwarding) ack the leased items they
-- were routed from. Runs first in a MULTI whose HSETNX commands then store the new bodies, so
-- bodies never pass through Lua (Redis's Lua copies and hashes every byte of each string it is
-- handed). An id already stored (or earlier in this call) is skipped, so retrying a call whose
-- reply was lost never duplicates an item.
-- KEYS: queue, bodies, leases of the forwarded items' queue.
-- ARGV[1] = n acks; then n × (id, lease member '<token>|<id>'); then the new ids.
-- Returns {added, ids of the acks whose lease was not held}.
local acks = tonumber(ARGV[1])
local first = 2 * acks + 2
local added = 0
if #ARGV >= first then
  local ids = {}
  for n = first, #ARGV do ids[n - first + 1] = ARGV[n] end
  local stored = redis.call('HMGET', KEYS[2], unpack(ids))
  local fresh, seen = {}, {}
  for n = 1, #ids do
    local id = ids[n]
    if not stored[n] and not seen[id] then
      seen[id] = true
      added = added + 1
      fresh[added] = id
    end
  end
  if added > 0 then redis.call('LPUSH', KEYS[1], unpack(fresh)) end
end
-- Removing the lease is the fence, as in settle.lua.
local done, stale = {}, {}
for n = 1, acks do
  local id = ARGV[2 * n]
  if redis.call('ZREM', KEYS[3], ARGV[2 * n + 1]) == 1 then
    done[#done + 1] = id
  else
    stale[#stale + 1] = id
  end
end
if #done > 0 then redis.call('HDEL', KEYS[2], unpack(done)) end
return {added, stale}
