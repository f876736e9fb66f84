-- Settle leased items, each only if its lease is still held by the presented token.
-- KEYS: leases, owners, bodies, attempts, replays, meta, scheduled, dlq, queue
-- ARGV[1] = op: 'ack' | 'extend' | 'retry' | 'dlq' | 'defer' | 'release';
-- ARGV[2] = deadline (extend) or '';
-- then per item: id, token, a, b  (retry: a = due ms, b = body; dlq: a = order key, b = meta
-- JSON; defer: a = due ms). Defer and release count no attempt.
-- Returns the ids whose lease was not held (stale).
-- Variadic commands, one per structure per batch: a redis.call costs more than its work.
local op, stale = ARGV[1], {}
local ids = {}
for i = 3, #ARGV, 4 do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return stale end
local owners = redis.call('HMGET', KEYS[2], unpack(ids))
-- A settled lease is gone, so a second copy of an id in one call is stale (extend keeps it).
local held, seen = {}, {}
for n, id in ipairs(ids) do
  local i = 3 + (n - 1) * 4
  if owners[n] == ARGV[i + 1] and (op == 'extend' or not seen[id]) then
    held[#held + 1] = i
    seen[id] = true
  else
    stale[#stale + 1] = id
  end
end
if #held == 0 then return stale end
local function each(f)
  local out = {}
  for _, i in ipairs(held) do f(out, ARGV[i], ARGV[i + 2], ARGV[i + 3]) end
  return out
end
if op == 'extend' then
  redis.call('ZADD', KEYS[1], unpack(each(function(o, id) o[#o + 1] = ARGV[2]; o[#o + 1] = id end)))
  return stale
end
local held_ids = each(function(o, id) o[#o + 1] = id end)
redis.call('ZREM', KEYS[1], unpack(held_ids))
redis.call('HDEL', KEYS[2], unpack(held_ids))
if op == 'ack' then
  for k = 3, 6 do redis.call('HDEL', KEYS[k], unpack(held_ids)) end
elseif op == 'retry' then
  redis.call('HSET', KEYS[3], unpack(each(function(o, id, _, b) o[#o + 1] = id; o[#o + 1] = b end)))
  for _, id in ipairs(held_ids) do redis.call('HINCRBY', KEYS[4], id, 1) end
  redis.call('ZADD', KEYS[7], unpack(each(function(o, id, a) o[#o + 1] = a; o[#o + 1] = id end)))
elseif op == 'dlq' then
  redis.call('HSET', KEYS[6], unpack(each(function(o, id, _, b) o[#o + 1] = id; o[#o + 1] = b end)))
  redis.call('ZADD', KEYS[8], unpack(each(function(o, _, a) o[#o + 1] = 0; o[#o + 1] = a end)))
elseif op == 'defer' then
  redis.call('ZADD', KEYS[7], unpack(each(function(o, id, a) o[#o + 1] = a; o[#o + 1] = id end)))
elseif op == 'release' then
  redis.call('RPUSH', KEYS[9], unpack(held_ids))
end
return stale
