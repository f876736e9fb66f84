-- Move up to ARGV[2] members scored <= ARGV[1] out of a zset into a queue.
-- KEYS: source zset, queue, bodies
-- ARGV[3] = 'promote' (scheduled ids: to the back of the line) | 'recover' (expired leases
-- '<token>|<id>': to the front, attempts + 1 in the stored body). Returns how many moved.
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #members == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(members))
if ARGV[3] == 'recover' then
  local ids = {}
  for _, member in ipairs(members) do
    local bar = string.find(member, '|', 1, true)
    ids[#ids + 1] = bar and string.sub(member, bar + 1) or member
  end
  local old = redis.call('HMGET', KEYS[3], unpack(ids))
  local bodies = {}
  for n, id in ipairs(ids) do
    if old[n] then
      local attempts, replays, rest = string.match(old[n], '^(%d+):(%d+):()')
      bodies[#bodies + 1] = id
      if attempts then
        bodies[#bodies + 1] = tonumber(attempts) + 1 .. ':' .. replays .. ':' .. string.sub(old[n], rest)
      else
        bodies[#bodies + 1] = '1:0:' .. old[n]
      end
    end
  end
  if #bodies > 0 then redis.call('HSET', KEYS[3], unpack(bodies)) end
  -- Pushed in reverse so the earliest deadline is leased first, the batch in its old order.
  local back = {}
  for i = #ids, 1, -1 do back[#back + 1] = ids[i] end
  redis.call('RPUSH', KEYS[2], unpack(back))
else
  redis.call('LPUSH', KEYS[2], unpack(members))
end
return #members
