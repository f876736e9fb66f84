-- One GCRA step, in integer microseconds (exact in doubles below 2^53).
-- KEYS[1] = the limiter's TAT; ARGV: now, emission interval T, tolerance tau, quantity.
-- Returns {allowed 1/0, the TAT seen before ('' if none)}; the caller derives the headers.
local now, t, tau, q = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored and tonumber(stored) > now then tat = tonumber(stored) end
local new_tat = tat + t * q
if now < new_tat - tau then
  return {0, stored or ''}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 60000)
return {1, stored or ''}
