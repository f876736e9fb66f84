-- Ingest requests that arrived together for one partition, in one call (group commit): each
-- request, in order, is checked and stored exactly as if it came alone. For a request: charge
-- each of its tenants' GCRA buckets (gcra.lua's arithmetic, on the bucket as the earlier
-- requests of this call left it), compare the queue's depth with the partition's share of the
-- cap, and only if both pass keep its bodies and ids. A refused request leaves nothing behind.
-- KEYS[1] = queue, KEYS[2] = bodies, KEYS[3..] = the TAT key of each tenant named in the call.
-- ARGV[1] = now µs, ARGV[2] = T µs, ARGV[3] = tau µs, ARGV[4] = cap, ARGV[5] = requests; then
-- per request: its tenant count m, m pairs (TAT key index from 1, alert count), its alert
-- count n, n pairs (id, stored body). An id already stored (or earlier in this call) is
-- skipped, so a retried request never duplicates an item.
-- Returns one verdict per request: {'ok', added} | {'rate', tenant index from 1 within the
-- request, TAT it saw ('' if none)} | {'full', depth}.
local now, t, tau, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local requests = tonumber(ARGV[5])
local tat, shown, dirty = {}, {}, {}
local depth = redis.call('LLEN', KEYS[1])
local pushed, seen, verdicts = {}, {}, {}
local a = 6
for r = 1, requests do
  local m = tonumber(ARGV[a])
  a = a + 1
  local refused
  local charged = {}
  for i = 1, m do
    local k, quantity = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    a = a + 2
    if tat[k] == nil then
      local stored = redis.call('GET', KEYS[k + 2])
      shown[k] = stored or ''
      tat[k] = stored and tonumber(stored) or false
    end
    if not refused then
      local base = now
      if tat[k] and tat[k] > now then base = tat[k] end
      local new_tat = base + t * quantity
      if now < new_tat - tau then
        refused = {'rate', i, shown[k]}
      else
        charged[k] = new_tat
      end
    end
  end
  local n = tonumber(ARGV[a])
  local first = a + 1
  a = first + 2 * n
  if not refused and depth + n > cap then refused = {'full', depth} end
  if refused then
    verdicts[r] = refused
  else
    local fresh = 0
    if n <= 4 then
      for j = 0, n - 1 do
        local id = ARGV[first + 2 * j]
        if not seen[id] and redis.call('HSETNX', KEYS[2], id, ARGV[first + 2 * j + 1]) == 1 then
          seen[id] = true
          fresh = fresh + 1
          pushed[#pushed + 1] = id
        end
      end
    else
      -- HMGET then one HSET per step of 500, so no unpack grows past Lua's stack.
      for from = 0, n - 1, 500 do
        local ids = {}
        for j = from, math.min(n, from + 500) - 1 do ids[#ids + 1] = ARGV[first + 2 * j] end
        local held = redis.call('HMGET', KEYS[2], unpack(ids))
        local bodies = {}
        for j = 1, #ids do
          local id = ids[j]
          if not held[j] and not seen[id] then
            seen[id] = true
            fresh = fresh + 1
            pushed[#pushed + 1] = id
            bodies[#bodies + 1] = id
            bodies[#bodies + 1] = ARGV[first + 2 * (from + j - 1) + 1]
          end
        end
        if #bodies > 0 then redis.call('HSET', KEYS[2], unpack(bodies)) end
      end
    end
    for k, value in pairs(charged) do
      tat[k] = value
      shown[k] = string.format('%.0f', value)
      dirty[k] = true
    end
    depth = depth + fresh
    verdicts[r] = {'ok', fresh}
  end
end
for from = 1, #pushed, 500 do
  redis.call('LPUSH', KEYS[1], unpack(pushed, from, math.min(#pushed, from + 499)))
end
for k in pairs(dirty) do
  redis.call('SET', KEYS[k + 2], shown[k], 'PX', math.floor((tat[k] - now) / 1000) + 60000)
end
return verdicts
