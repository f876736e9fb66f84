-- One ingest request, all in one partition: charge each tenant's GCRA bucket (gcra.lua's
-- arithmetic), compare the queue's depth with the partition's share of the cap, and only if
-- both pass keep the bodies and ids it stored. A refusal leaves nothing behind. The bodies come
-- in as arguments (one EVALSHA, no MULTI): the script alone decides whether they stay.
-- KEYS[1] = queue, KEYS[2] = bodies, KEYS[3..] = one TAT key per tenant.
-- ARGV[1] = now µs, ARGV[2] = T µs, ARGV[3] = tau µs, ARGV[4] = cap; then each tenant's
-- alert count (one per TAT key); then (id, stored body) pairs. An id already stored (or
-- earlier in this call) is skipped, so a retried call never duplicates an item.
-- Returns {'ok', added} | {'rate', tenant index from 1, TAT seen ('' if none)} | {'full', depth}.
-- Each redis.call costs about a microsecond over its command: the common path makes as few as
-- it can (the cap is checked from LPUSH's answer, and undone on a refusal).
local now, t, tau, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tenants = #KEYS - 2
local tats = {}
for i = 1, tenants do
  local stored = redis.call('GET', KEYS[i + 2])
  local tat = now
  if stored and tonumber(stored) > now then tat = tonumber(stored) end
  local new_tat = tat + t * tonumber(ARGV[4 + i])
  if now < new_tat - tau then return {'rate', i, stored or ''} end
  tats[i] = new_tat
end
local first = 5 + tenants
local n = (#ARGV - first + 1) / 2
-- Store the new bodies: HSETNX each (one call per id) for a few, else HMGET then one HSET per
-- step of 500 (so no unpack grows past Lua's stack).
local fresh, seen = {}, {}
if n <= 4 then
  for k = 1, n do
    local id = ARGV[first + 2 * k - 2]
    if redis.call('HSETNX', KEYS[2], id, ARGV[first + 2 * k - 1]) == 1 then
      fresh[#fresh + 1] = id
    end
  end
else
  for from = 0, n - 1, 500 do
    local ids = {}
    for k = from + 1, math.min(n, from + 500) do ids[k - from] = ARGV[first + 2 * k - 2] end
    local held = redis.call('HMGET', KEYS[2], unpack(ids))
    local bodies = {}
    for j = 1, #ids do
      local id = ids[j]
      if not held[j] and not seen[id] then
        seen[id] = true
        fresh[#fresh + 1] = id
        bodies[#bodies + 1] = id
        bodies[#bodies + 1] = ARGV[first + 2 * (from + j) - 1]
      end
    end
    if #bodies > 0 then redis.call('HSET', KEYS[2], unpack(bodies)) end
  end
end
local depth = 0
for from = 1, #fresh, 500 do
  depth = redis.call('LPUSH', KEYS[1], unpack(fresh, from, math.min(#fresh, from + 499)))
end
if #fresh == 0 then depth = redis.call('LLEN', KEYS[1]) end
depth = depth - #fresh
if depth + n > cap then
  -- Undone: the ids just pushed are the list's head, and their bodies are new.
  for from = 1, #fresh, 500 do
    local upto = math.min(#fresh, from + 499)
    redis.call('LPOP', KEYS[1], upto - from + 1)
    redis.call('HDEL', KEYS[2], unpack(fresh, from, upto))
  end
  return {'full', depth}
end
for i = 1, tenants do
  redis.call('SET', KEYS[i + 2], string.format('%.0f', tats[i]), 'PX',
    math.floor((tats[i] - now) / 1000) + 60000)
end
return {'ok', #fresh}
