-- Compare-and-set on idempotency records, the rare half of dedup (claims and successes alone
-- are plain pipelined SETs). Each KEYS[i] is one record, a string 'done:<expiry ms>' or
-- 'sending:<expiry ms>:<owner>' by the workers' clock, with a Redis TTL a grace period longer.
-- ARGV[1] = now ms, ARGV[2] = owner, ARGV[3] = grace ms; then per key: op, duration ms.
--   'take'    claim a record whose claim answer showed it lapsed (or absent);
--   'hold'    extend this owner's live claim; 'release' forget it;
--   'done'    record a success, whatever was there (the send happened).
-- Release and hold apply only to a live claim of this owner: a lapsed claim may be another
-- worker's by now. Returns per key 'claimed', 'done' or 'sending' for take; '' otherwise.
local now, owner, grace = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local out = {}
for n, key in ipairs(KEYS) do
  local op, span = ARGV[2 + 2 * n], tonumber(ARGV[3 + 2 * n])
  local current = redis.call('GET', key)
  local state, holder = '', ''
  if current then
    local s1 = string.find(current, ':', 1, true)
    if s1 then
      local s2 = string.find(current, ':', s1 + 1, true)
      local expiry = tonumber(string.sub(current, s1 + 1, (s2 or 0) - 1))
      if expiry and expiry > now then
        state = string.sub(current, 1, s1 - 1)
        if s2 then holder = string.sub(current, s2 + 1) end
      end
    end
  end
  local answer = ''
  local mine = state == 'sending' and holder == owner
  if op == 'take' then
    if state ~= '' then
      answer = state
    else
      redis.call('SET', key, 'sending:' .. string.format('%.0f', now + span) .. ':' .. owner,
        'PX', span + grace)
      answer = 'claimed'
    end
  elseif op == 'done' then
    redis.call('SET', key, 'done:' .. string.format('%.0f', now + span), 'PX', span + grace)
  elseif op == 'hold' and mine then
    redis.call('SET', key, 'sending:' .. string.format('%.0f', now + span) .. ':' .. owner,
      'PX', span + grace)
  elseif op == 'release' and mine then
    redis.call('DEL', key)
  end
  out[n] = answer
end
return out
