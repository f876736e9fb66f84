-- Idempotency records of one partition, valued 'done:<expiry ms>' or
-- 'sending:<expiry ms>:<owner>' by the workers' clock; Redis's own TTL (a minute longer) only
-- cleans up. KEYS = the records.
-- ARGV[1] = now ms, ARGV[2] = owner; then per key i: ARGV[2i+1] = op ('claim' | 'done' |
-- 'release' | 'hold'), ARGV[2i+2] = duration ms (hold or TTL). Release and hold apply only to a
-- live claim of this owner: a lapsed claim may be another worker's by now.
-- Returns per key: 'claimed', 'done' or 'sending' for claim; '' otherwise.
local now, owner = tonumber(ARGV[1]), ARGV[2]
local out = {}
local values = redis.call('MGET', unpack(KEYS))
-- A key may repeat in one call: a later copy sees what the earlier one wrote.
local written = {}
for i, key in ipairs(KEYS) do
  local op, span = ARGV[2 * i + 1], tonumber(ARGV[2 * i + 2])
  local state, holder = '', ''
  local current = values[i]
  if written[key] ~= nil then current = written[key] end
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
  if op == 'claim' then
    if state ~= '' then
      answer = state
    else
      written[key] = 'sending:' .. string.format('%.0f', now + span) .. ':' .. owner
      redis.call('SET', key, written[key], 'PX', span + 60000)
      answer = 'claimed'
    end
  elseif op == 'done' then
    written[key] = 'done:' .. string.format('%.0f', now + span)
    redis.call('SET', key, written[key], 'PX', span + 60000)
  elseif state ~= 'sending' or holder ~= owner then
    -- release and hold touch only this owner's live claim
  elseif op == 'hold' then
    written[key] = 'sending:' .. string.format('%.0f', now + span) .. ':' .. owner
    redis.call('SET', key, written[key], 'PX', span + 60000)
  else
    written[key] = false
    redis.call('DEL', key)
  end
  out[i] = answer
end
return out
