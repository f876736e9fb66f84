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
-- Where each request's fields start, and every id of the call in order, read up front so that
-- one HMGET per 500 ids tells which bodies are stored already (a call per id costs ~1 µs more).
local starts, ids = {}, {}
local a = 6
for r = 1, requests do
  starts[r] = a
  local m = tonumber(ARGV[a])
  local n = tonumber(ARGV[a + 1 + 2 * m])
  local first = a + 2 + 2 * m
  for j = 0, n - 1 do ids[#ids + 1] = ARGV[first + 2 * j] end
  a = first + 2 * n
end
local held = {}
for from = 1, #ids, 500 do
  local upto = math.min(#ids, from + 499)
  local found = redis.call('HMGET', KEYS[2], unpack(ids, from, upto))
  for j = from, upto do
    if found[j - from + 1] then held[ids[j]] = true end
  end
end
-- Per TAT key: its value (µs, false if none), the text read (for a refusal's reply), and
-- whether this call changed it. Lua's per-operation cost is what a request costs here: no
-- table or string is made per request on the common path.
local tat, read, dirty = {}, {}, {}
local function seen_text(k)
  if dirty[k] then return string.format('%.0f', tat[k]) end
  return read[k]
end
local depth = redis.call('LLEN', KEYS[1])
local pushed, bodies, verdicts = {}, {}, {}
local np, nb = 0, 0
for r = 1, requests do
  a = starts[r]
  local m = tonumber(ARGV[a])
  local refused
  -- First every tenant is checked, then (all allowed) charged: a refusal charges none.
  for i = 1, m do
    local k, quantity = tonumber(ARGV[a + 2 * i - 1]), tonumber(ARGV[a + 2 * i])
    if tat[k] == nil then
      local stored = redis.call('GET', KEYS[k + 2])
      read[k] = stored or ''
      tat[k] = stored and tonumber(stored) or false
    end
    local base = tat[k]
    if not base or base < now then base = now end
    if now < base + t * quantity - tau then
      refused = {'rate', i, seen_text(k)}
      break
    end
  end
  a = a + 1 + 2 * m
  local n = tonumber(ARGV[a])
  local first = a + 1
  if not refused and depth + n > cap then refused = {'full', depth} end
  if refused then
    verdicts[r] = refused
  else
    for i = 1, m do
      local k, quantity = tonumber(ARGV[starts[r] + 2 * i - 1]), tonumber(ARGV[starts[r] + 2 * i])
      local base = tat[k]
      if not base or base < now then base = now end
      tat[k] = base + t * quantity
      dirty[k] = true
    end
    local fresh = 0
    for j = first, first + 2 * n - 2, 2 do
      local id = ARGV[j]
      if not held[id] then
        held[id] = true
        fresh = fresh + 1
        np = np + 1
        pushed[np] = id
        bodies[nb + 1] = id
        bodies[nb + 2] = ARGV[j + 1]
        nb = nb + 2
      end
    end
    depth = depth + fresh
    verdicts[r] = {'ok', fresh}
  end
end
-- One HSET per 500 bodies and one LPUSH per 500 ids, so no unpack grows past Lua's stack.
for from = 1, nb, 1000 do
  redis.call('HSET', KEYS[2], unpack(bodies, from, math.min(nb, from + 999)))
end
for from = 1, np, 500 do
  redis.call('LPUSH', KEYS[1], unpack(pushed, from, math.min(np, from + 499)))
end
for k in pairs(dirty) do
  redis.call('SET', KEYS[k + 2], string.format('%.0f', tat[k]), 'PX',
    math.floor((tat[k] - now) / 1000) + 60000)
end
return verdicts
