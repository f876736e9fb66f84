-- Read or move DLQ/dead entries of one partition in one bounded step.
-- KEYS: set (dlq or dead), meta, queue, dead, bodies (stored as '<attempts>:<replays>:<json>')
-- ARGV: op ('page' | 'count' | 'groups' | 'replay' | 'purge' | 'bury'), start, stop
--       (ZRANGEBYLEX bounds in the scan's direction), max hits, scan budget, class, stage,
--       tenant, channel ('' = any, else the needle '"field":"value"' the metadata JSON must
--       contain), max replays, reset attempts ('1'/'0'), from dlq ('1'/'0'),
--       scope ('ids' | 'filter'), search text (ASCII lowercase, '' = none), the same text
--       JSON-escaped, direction ('asc' | 'desc'), bucket ms (groups), then the ids
-- Returns {done, last key examined, examined, moved, poisoned, then the page entries (meta,
-- stored body)... or the groups (class, bucket start, count)...}
local op, lower, upper = ARGV[1], ARGV[2], ARGV[3]
local max_hits, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local class, stage, tenant, channel = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local max_replays, reset, from_dlq = tonumber(ARGV[10]), ARGV[11] == '1', ARGV[12] == '1'
local needles = {}
for _, needle in ipairs({class, stage, tenant, channel}) do
  if needle ~= '' then needles[#needles + 1] = needle end
end
local fields = #needles > 0
local by_ids = ARGV[13] == 'ids'
local text, text_json = ARGV[14], ARGV[15]
local desc = ARGV[16] == 'desc'
local searching = text ~= ''
local first_id = 18

local function id_of(key)
  local sep = string.find(key, ':', 1, true)
  if sep then return string.sub(key, sep + 1) end
  return key
end

local function has_text(s)
  return type(s) == 'string' and string.find(string.lower(s), text, 1, true) ~= nil
end

-- The search (store::text_matches): metadata fields, then the alert's label and annotation
-- values and severity. The escaped text inside the lowercased JSON is a necessary condition
-- (JSON escaping maps each character on its own), so most entries are never decoded.
local function text_hit(raw, body)
  if string.find(string.lower(raw), text_json, 1, true) then
    local ok, m = pcall(cjson.decode, raw)
    if ok and type(m) == 'table' and (has_text(m.id) or has_text(m.error_class)
        or has_text(m.error_message) or has_text(m.tenant) or has_text(m.channel)) then
      return true
    end
  end
  if not body or not string.find(string.lower(body), text_json, 1, true) then return false end
  local _, _, at = string.find(body, '^%d+:%d+:()')
  local ok, e = pcall(cjson.decode, at and string.sub(body, at) or body)
  if not ok or type(e) ~= 'table' or type(e.payload) ~= 'table' then return false end
  local a = e.payload
  if type(a.alert) == 'table' then a = a.alert end
  for _, field in ipairs({'labels', 'annotations'}) do
    if type(a[field]) == 'table' then
      for _, v in pairs(a[field]) do
        if has_text(v) then return true end
      end
    end
  end
  return has_text(a.severity)
end

local function matches(raw, body)
  if not raw then return false end
  -- Plain substring tests of '"field":<json value>' (see field_needle): no JSON decoding.
  for _, needle in ipairs(needles) do
    if not string.find(raw, needle, 1, true) then return false end
  end
  if searching then return text_hit(raw, body) end
  return true
end

-- The hits, as parallel lists: ids, their order keys, their metadata. Commands are variadic per
-- step (one call per structure, not per entry): each redis.call costs more than the work.
local ids, keys, metas = {}, {}, {}
local examined, last, done = 0, lower, 1
local function hit(id, key, raw)
  ids[#ids + 1] = id; keys[#keys + 1] = key; metas[#metas + 1] = raw
end
if by_ids then
  local wanted, seen = {}, {}
  for i = first_id, #ARGV do
    examined = examined + 1
    if not seen[ARGV[i]] then seen[ARGV[i]] = true; wanted[#wanted + 1] = ARGV[i] end
  end
  if #wanted > 0 then
    local raws = redis.call('HMGET', KEYS[2], unpack(wanted))
    local found_ids, found_keys, found_raws = {}, {}, {}
    for n, raw in ipairs(raws) do
      if raw then
        local ok, m = pcall(cjson.decode, raw)
        if ok and type(m) == 'table' and type(m.key) == 'string' then
          found_ids[#found_ids + 1] = wanted[n]
          found_keys[#found_keys + 1] = m.key
          found_raws[#found_raws + 1] = raw
        end
      end
    end
    -- Only entries still in this set (an id listed twice, or already moved, is not moved again).
    if #found_keys > 0 then
      local scores = redis.call('ZMSCORE', KEYS[1], unpack(found_keys))
      local bodies = {}
      if searching then bodies = redis.call('HMGET', KEYS[5], unpack(found_ids)) end
      for n = 1, #found_keys do
        if scores[n] and #ids < max_hits and (not searching or matches(found_raws[n], bodies[n] or nil)) then
          hit(found_ids[n], found_keys[n], found_raws[n])
        end
      end
    end
  end
  last = ''
else
  last = ''
  local cursor, stop = lower, false
  local range = desc and 'ZREVRANGEBYLEX' or 'ZRANGEBYLEX'
  while not stop do
    local chunk = redis.call(range, KEYS[1], cursor, upper, 'LIMIT', 0, 100)
    if #chunk == 0 then break end
    local chunk_ids = {}
    for n, key in ipairs(chunk) do chunk_ids[n] = id_of(key) end
    local raws = redis.call('HMGET', KEYS[2], unpack(chunk_ids))
    local bodies = {}
    if searching then bodies = redis.call('HMGET', KEYS[5], unpack(chunk_ids)) end
    for n, key in ipairs(chunk) do
      if #ids >= max_hits or examined >= budget then
        stop = true; done = 0; break
      end
      examined = examined + 1
      last = key
      local raw = raws[n]
      if raw and matches(raw, bodies[n] or nil) then hit(chunk_ids[n], key, raw) end
    end
    cursor = '(' .. chunk[#chunk]
  end
end

local out = {done, last, examined, 0, 0}
local count = #ids
if count == 0 then return out end
if op == 'page' then
  local bodies = redis.call('HMGET', KEYS[5], unpack(ids))
  for n = 1, count do
    out[#out + 1] = metas[n]
    out[#out + 1] = bodies[n] or ''
  end
  return out
elseif op == 'count' then
  out[4] = count
  return out
elseif op == 'groups' then
  local bucket = tonumber(ARGV[17])
  local by_class, classes = {}, {}
  for n = 1, count do
    -- The class without decoding the record; one with a quote or backslash is decoded.
    local class = string.match(metas[n], '"error_class":"([^"\\]*)"')
    if not class then
      local ok, m = pcall(cjson.decode, metas[n])
      class = (ok and type(m) == 'table' and type(m.error_class) == 'string') and m.error_class or ''
    end
    local t = tonumber(string.sub(keys[n], 1, 13)) or 0
    local b = t - t % bucket
    if not by_class[class] then by_class[class] = {}; classes[#classes + 1] = class end
    by_class[class][b] = (by_class[class][b] or 0) + 1
  end
  for _, class in ipairs(classes) do
    for b, n in pairs(by_class[class]) do
      out[#out + 1] = class; out[#out + 1] = b; out[#out + 1] = n
    end
  end
  return out
end
-- Every hit is in the set (scanned, or checked above, in this same call): remove them all.
redis.call('ZREM', KEYS[1], unpack(keys))
if op == 'purge' then
  redis.call('HDEL', KEYS[5], unpack(ids))
  redis.call('HDEL', KEYS[2], unpack(ids))
  out[4] = count
  return out
elseif op == 'bury' then
  local members = {}
  for n = 1, count do members[2 * n - 1] = 0; members[2 * n] = keys[n] end
  redis.call('ZADD', KEYS[4], unpack(members))
  out[4] = count
  return out
end
-- Replay. The replay counter lives in the stored body, so it survives with the entry; a missing
-- body keeps its count too (an empty one that leases as corrupt).
local stored = redis.call('HMGET', KEYS[5], unpack(ids))
local pushed, dead, updated = {}, {}, {}
for n = 1, count do
  local body = stored[n] or ''
  local attempts, replays, rest = string.match(body, '^(%d+):(%d+):()')
  local json = body
  if attempts then json = string.sub(body, rest) else attempts, replays = '0', '0' end
  replays = tonumber(replays) + 1
  if from_dlq and replays > max_replays then
    dead[#dead + 1] = 0; dead[#dead + 1] = keys[n]
  else
    pushed[#pushed + 1] = ids[n]
    if reset then attempts = '0' end
  end
  updated[#updated + 1] = ids[n]
  updated[#updated + 1] = attempts .. ':' .. replays .. ':' .. json
end
if #dead > 0 then redis.call('ZADD', KEYS[4], unpack(dead)) end
if #pushed > 0 then
  redis.call('LPUSH', KEYS[3], unpack(pushed))
  redis.call('HDEL', KEYS[2], unpack(pushed))
end
redis.call('HSET', KEYS[5], unpack(updated))
out[4] = #pushed
out[5] = #dead / 2
return out
