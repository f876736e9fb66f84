-- Idempotency records, valued '<state>:<expiry ms by the workers' clock>'; Redis's own TTL
-- (a minute longer) only cleans up. KEYS[1] = the record.
-- ARGV: op ('claim' | 'done' | 'release'), now ms, duration ms (hold or TTL).
-- Returns 'claimed', 'done' or 'sending' for claim; '' otherwise.
local op, now, span = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local state = ''
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, ':', 1, true)
  if sep and tonumber(string.sub(current, sep + 1)) > now then
    state = string.sub(current, 1, sep - 1)
  end
end
if op == 'claim' then
  if state ~= '' then return state end
  redis.call('SET', KEYS[1], 'sending:' .. string.format('%.0f', now + span), 'PX', span + 60000)
  return 'claimed'
elseif op == 'done' then
  redis.call('SET', KEYS[1], 'done:' .. string.format('%.0f', now + span), 'PX', span + 60000)
elseif state == 'sending' then
  redis.call('DEL', KEYS[1])
end
return ''
