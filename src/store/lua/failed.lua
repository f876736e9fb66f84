-- Read or move DLQ/dead entries of one partition in one bounded step.
-- KEYS: set (dlq or dead), meta, queue, dead, bodies (stored as '<attempts>:<replays>:<json>')
-- ARGV: op ('page' | 'count' | 'replay' | 'purge' | 'bury'), lower, upper (ZRANGEBYLEX bounds),
--       max hits, scan budget, class, stage, tenant, channel ('' = any, '=v' = must equal v),
--       max replays, reset attempts ('1'/'0'), from dlq ('1'/'0'), scope ('ids' | 'filter'),
--       then the ids
-- Returns {done, last key examined, examined, moved, poisoned, page entries (meta, stored body)...}
local op, lower, upper = ARGV[1], ARGV[2], ARGV[3]
local max_hits, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local class, stage, tenant, channel = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local max_replays, reset, from_dlq = tonumber(ARGV[10]), ARGV[11] == '1', ARGV[12] == '1'
local fields = class ~= '' or stage ~= '' or tenant ~= '' or channel ~= ''
local by_ids = ARGV[13] == 'ids'

local function id_of(key)
  local sep = string.find(key, ':', 1, true)
  if sep then return string.sub(key, sep + 1) end
  return key
end

local function matches(raw)
  if not raw then return false end
  if not fields then return true end
  local ok, m = pcall(cjson.decode, raw)
  if not ok or type(m) ~= 'table' then return false end
  if class ~= '' and '=' .. tostring(m.error_class) ~= class then return false end
  if stage ~= '' and '=' .. tostring(m.stage) ~= stage then return false end
  if tenant ~= '' and '=' .. tostring(m.tenant) ~= tenant then return false end
  if channel ~= '' and '=' .. tostring(m.channel) ~= channel then return false end
  return true
end

-- hits: list of {id, key, meta}
local hits, examined, last, done = {}, 0, lower, 1
if by_ids then
  for i = 14, #ARGV do
    local id = ARGV[i]
    local raw = redis.call('HGET', KEYS[2], id)
    if raw then
      local ok, m = pcall(cjson.decode, raw)
      if ok and type(m) == 'table' and m.key and redis.call('ZSCORE', KEYS[1], m.key) then
        hits[#hits + 1] = {id, m.key, raw}
      end
    end
    examined = examined + 1
  end
  last = ''
else
  last = ''
  local cursor, stop = lower, false
  while not stop do
    local chunk = redis.call('ZRANGEBYLEX', KEYS[1], cursor, upper, 'LIMIT', 0, 100)
    if #chunk == 0 then break end
    for _, key in ipairs(chunk) do
      if #hits >= max_hits or examined >= budget then
        stop = true; done = 0; break
      end
      examined = examined + 1
      last = key
      local id = id_of(key)
      local raw = redis.call('HGET', KEYS[2], id)
      if matches(raw) then hits[#hits + 1] = {id, key, raw} end
    end
    cursor = '(' .. chunk[#chunk]
  end
end

local out = {done, last, examined, 0, 0}
local moved, poisoned = 0, 0
for _, hit in ipairs(hits) do
  local id, key = hit[1], hit[2]
  if op == 'page' then
    out[#out + 1] = hit[3]
    out[#out + 1] = redis.call('HGET', KEYS[5], id) or ''
  elseif op == 'count' then
    moved = moved + 1
  elseif moved + poisoned < max_hits and redis.call('ZREM', KEYS[1], key) == 1 then
    -- ZREM answering 1 is the guard: an id listed twice, or already moved, is not moved again.
    if op == 'purge' then
      redis.call('HDEL', KEYS[5], id)
      redis.call('HDEL', KEYS[2], id)
      moved = moved + 1
    elseif op == 'bury' then
      redis.call('ZADD', KEYS[4], 0, key)
      moved = moved + 1
    else
      -- The replay counter lives in the stored body, so it survives with the entry; a missing
      -- body keeps its count too (an empty one that leases as corrupt).
      local stored = redis.call('HGET', KEYS[5], id) or ''
      local attempts, replays, rest = string.match(stored, '^(%d+):(%d+):()')
      local json = stored
      if attempts then json = string.sub(stored, rest) else attempts, replays = '0', '0' end
      replays = tonumber(replays) + 1
      if from_dlq and replays > max_replays then
        redis.call('ZADD', KEYS[4], 0, key)
        poisoned = poisoned + 1
      else
        redis.call('LPUSH', KEYS[3], id)
        redis.call('HDEL', KEYS[2], id)
        if reset then attempts = '0' end
        moved = moved + 1
      end
      redis.call('HSET', KEYS[5], id, attempts .. ':' .. replays .. ':' .. json)
    end
  end
end
out[4] = moved
out[5] = poisoned
return out
