-- Store and push one partition's new items, then (when forwarding) ack the leased items they
-- were routed from. The bodies come in as arguments: one EVALSHA stores them all with one
-- variadic HSET, where a MULTI of this script's source (hashed by Redis on every EVAL) and one
-- HSETNX per body cost Redis more per item than copying the body into Lua. An id already
-- stored (or earlier in this call) is skipped, so retrying a call whose reply was lost never
-- duplicates an item. Held, the new items are leased (member '<token>|<id>' until the
-- deadline) instead of pushed: the caller settles them next.
-- KEYS: queue, bodies, leases of the forwarded items' queue, leases of the queue.
-- ARGV[1] = n acks; ARGV[2] = hold deadline ('' to push); ARGV[3] = hold token; then n × (id,
-- lease member '<token>|<id>'); then (id, stored body) pairs, at most 500 (the store's batch
-- limit keeps every unpack within Lua's stack).
-- Returns {added, ids of the acks whose lease was not held, ids held}.
local acks = tonumber(ARGV[1])
local first = 2 * acks + 4
local n = (#ARGV - first + 1) / 2
local added, held = 0, {}
if n > 0 then
  local ids = {}
  for k = 1, n do ids[k] = ARGV[first + 2 * k - 2] end
  local stored = redis.call('HMGET', KEYS[2], unpack(ids))
  local fresh, bodies, seen = {}, {}, {}
  for k = 1, n do
    local id = ids[k]
    if not stored[k] and not seen[id] then
      seen[id] = true
      added = added + 1
      fresh[added] = id
      bodies[2 * added - 1] = id
      bodies[2 * added] = ARGV[first + 2 * k - 1]
    end
  end
  if added > 0 then
    redis.call('HSET', KEYS[2], unpack(bodies))
    if ARGV[2] == '' then
      redis.call('LPUSH', KEYS[1], unpack(fresh))
    else
      local leases = {}
      for k = 1, added do
        leases[2 * k - 1] = ARGV[2]; leases[2 * k] = ARGV[3] .. '|' .. fresh[k]
      end
      redis.call('ZADD', KEYS[4], unpack(leases))
      held = fresh
    end
  end
end
-- Removing the lease is the fence, as in settle.lua.
local done, stale = {}, {}
for k = 1, acks do
  local id = ARGV[2 * k + 2]
  if redis.call('ZREM', KEYS[3], ARGV[2 * k + 3]) == 1 then
    done[#done + 1] = id
  else
    stale[#stale + 1] = id
  end
end
if #done > 0 then redis.call('HDEL', KEYS[2], unpack(done)) end
return {added, stale, held}
