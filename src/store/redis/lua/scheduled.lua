#!lua flags=no-writes
-- The due-soonest scheduled entries of one partition, for the queue's summary: no writes.
-- KEYS: scheduled, bodies (stored as '<attempts>:<replays>:<json>')
-- ARGV: max entries, '1' when entries are delivery jobs (which name their channel)
-- Returns {id, due ms, attempts, channel, ...}; channel '' when the entry has none.
local items = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
if #items == 0 then return {} end
local ids = {}
for i = 1, #items, 2 do ids[#ids + 1] = items[i] end
local bodies = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for n, id in ipairs(ids) do
  local body = bodies[n]
  local attempts, channel = 0, ''
  if body then
    attempts = tonumber(string.match(body, '^(%d+):')) or 0
    -- A delivery job's own channel is the last such key: alert labels come before it, and
    -- quotes inside strings (an error message) are escaped.
    if ARGV[2] == '1' then
      for found in string.gmatch(body, '"channel":"([^"]*)"') do channel = found end
    end
  end
  out[#out + 1] = id
  out[#out + 1] = items[2 * n]
  out[#out + 1] = attempts
  out[#out + 1] = channel
end
return out
