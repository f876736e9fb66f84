-- Settle leased items, each only if its lease '<token>|<id>' is still in the leases zset.
-- KEYS: leases, bodies, meta, scheduled, dlq, queue
-- ARGV[1] = op: 'ack' | 'extend' | 'retry' | 'dlq' | 'defer' | 'release';
-- ARGV[2] = deadline (extend) or '';
-- then per item: id, lease member, a, b  (retry: a = due ms, b = envelope JSON; dlq: a = order
-- key, b = meta JSON; defer: a = due ms). Defer and release count no attempt.
-- Stored bodies are '<attempts>:<replays>:<json>'. Returns the ids whose lease was not held.
-- Variadic commands, one per structure per batch, except the fence, which needs an answer per item.
local op, stale = ARGV[1], {}
local count = (#ARGV - 2) / 4
if count < 1 then return stale end
local held, h, s = {}, 0, 0
-- held: ARGV index of each held item's id; stale: the ids of the others.
local function sort(n, is_held)
  if is_held then
    h = h + 1; held[h] = 4 * n - 1
  else
    s = s + 1; stale[s] = ARGV[4 * n - 1]
  end
end
if op == 'extend' then
  local members = {}
  for n = 1, count do members[n] = ARGV[4 * n] end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(members))
  for n = 1, count do sort(n, scores[n]) end
else
  -- Removing the lease is the fence: it answers 1 only while this token holds it, so a second
  -- copy of a lease in one call is stale. (ZMSCORE would format every score as text.)
  for n = 1, count do sort(n, redis.call('ZREM', KEYS[1], ARGV[4 * n]) == 1) end
end
if h == 0 then return stale end
-- field(i, k) and value(i, k) of the k-th held item (its id at ARGV index i), flattened for
-- one variadic command.
local function pairs_of(field, value)
  local out = {}
  for k = 1, h do
    local i = held[k]
    out[2 * k - 1] = field(i, k); out[2 * k] = value(i, k)
  end
  return out
end
local function list_of(at)
  local out = {}
  for k = 1, h do out[k] = ARGV[held[k] + at] end
  return out
end
if op == 'extend' then
  local deadline = ARGV[2]
  redis.call('ZADD', KEYS[1], 'XX', unpack(pairs_of(function() return deadline end,
    function(i) return ARGV[i + 1] end)))
  return stale
end
local held_ids = list_of(0)
if op == 'ack' then
  redis.call('HDEL', KEYS[2], unpack(held_ids))
elseif op == 'retry' then
  -- The attempt is counted here, from the stored counters: the client's copy may be stale.
  local old = redis.call('HMGET', KEYS[2], unpack(held_ids))
  redis.call('HSET', KEYS[2], unpack(pairs_of(function(i) return ARGV[i] end, function(i, k)
    local attempts, replays = string.match(old[k] or '', '^(%d+):(%d+):')
    return (tonumber(attempts) or 0) + 1 .. ':' .. (replays or '0') .. ':' .. ARGV[i + 3]
  end)))
  redis.call('ZADD', KEYS[4], unpack(pairs_of(function(i) return ARGV[i + 2] end,
    function(i) return ARGV[i] end)))
elseif op == 'dlq' then
  redis.call('HSET', KEYS[3], unpack(pairs_of(function(i) return ARGV[i] end,
    function(i) return ARGV[i + 3] end)))
  redis.call('ZADD', KEYS[5], unpack(pairs_of(function() return 0 end,
    function(i) return ARGV[i + 2] end)))
elseif op == 'defer' then
  redis.call('ZADD', KEYS[4], unpack(pairs_of(function(i) return ARGV[i + 2] end,
    function(i) return ARGV[i] end)))
elseif op == 'release' then
  redis.call('RPUSH', KEYS[6], unpack(held_ids))
end
return stale
