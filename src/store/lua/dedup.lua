-- Idempotency records of one partition, valued '<state>:<expiry ms by the workers' clock>';
-- Redis's own TTL (a minute longer) only cleans up. KEYS = the records.
-- ARGV[1] = now ms; then per key i: ARGV[2i] = op ('claim' | 'done' | 'release' | 'hold'),
-- ARGV[2i+1] = duration ms (hold or TTL).
-- Returns per key: 'claimed', 'done' or 'sending' for claim; '' otherwise.
local now = tonumber(ARGV[1])
local out = {}
local values = redis.call('MGET', unpack(KEYS))
-- A key may repeat in one call: a later copy sees what the earlier one wrote.
local written = {}
for i, key in ipairs(KEYS) do
  local op, span = ARGV[2 * i], tonumber(ARGV[2 * i + 1])
  local state = ''
  local current = values[i]
  if written[key] ~= nil then current = written[key] end
  if current then
    local sep = string.find(current, ':', 1, true)
    if sep and tonumber(string.sub(current, sep + 1)) > now then
      state = string.sub(current, 1, sep - 1)
    end
  end
  local answer = ''
  if op == 'claim' then
    if state ~= '' then
      answer = state
    else
      written[key] = 'sending:' .. string.format('%.0f', now + span)
      redis.call('SET', key, written[key], 'PX', span + 60000)
      answer = 'claimed'
    end
  elseif op == 'done' then
    written[key] = 'done:' .. string.format('%.0f', now + span)
    redis.call('SET', key, written[key], 'PX', span + 60000)
  elseif state ~= 'sending' then
    -- release and hold touch only a live claim
  elseif op == 'hold' then
    written[key] = 'sending:' .. string.format('%.0f', now + span)
    redis.call('SET', key, written[key], 'PX', span + 60000)
  else
    written[key] = false
    redis.call('DEL', key)
  end
  out[i] = answer
end
return out
