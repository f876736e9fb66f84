-- Idempotency records of one partition: KEYS[1] = hash key → 'done:<expiry ms>' or
-- 'sending:<expiry ms>:<owner>' by the workers' clock; KEYS[2] = zset key → when the record
-- may be swept (expiry + a minute).
-- ARGV[1] = now ms, ARGV[2] = owner; then per key i: ARGV[3i] = key, ARGV[3i+1] = op ('claim' |
-- 'done' | 'release' | 'hold'), ARGV[3i+2] = duration ms (hold or TTL). Release and hold apply
-- only to a live claim of this owner: a lapsed claim may be another worker's by now.
-- Returns per key: 'claimed', 'done' or 'sending' for claim; '' otherwise.
-- Variadic commands, one per structure per call: a redis.call costs more than its work.
local now, owner = tonumber(ARGV[1]), ARGV[2]
local keys = {}
for i = 3, #ARGV, 3 do keys[#keys + 1] = ARGV[i] end
local out = {}
if #keys == 0 then return out end
local values = redis.call('HMGET', KEYS[1], unpack(keys))
-- A key may repeat in one call: a later copy sees what the earlier one wrote.
local written, sweep_at = {}, {}
local function write(key, value, expiry)
  written[key] = value
  sweep_at[key] = expiry + 60000
end
for n, key in ipairs(keys) do
  local op, span = ARGV[3 * n + 1], tonumber(ARGV[3 * n + 2])
  local state, holder = '', ''
  local current = values[n]
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
      write(key, 'sending:' .. string.format('%.0f', now + span) .. ':' .. owner, now + span)
      answer = 'claimed'
    end
  elseif op == 'done' then
    write(key, 'done:' .. string.format('%.0f', now + span), now + span)
  elseif state ~= 'sending' or holder ~= owner then
    -- release and hold touch only this owner's live claim
  elseif op == 'hold' then
    write(key, 'sending:' .. string.format('%.0f', now + span) .. ':' .. owner, now + span)
  else
    written[key] = false
  end
  out[n] = answer
end
-- Each key's last write wins.
local sets, sweeps, dels, seen = {}, {}, {}, {}
for _, key in ipairs(keys) do
  local value = written[key]
  if value ~= nil and not seen[key] then
    seen[key] = true
    if value then
      sets[#sets + 1] = key; sets[#sets + 1] = value
      sweeps[#sweeps + 1] = sweep_at[key]; sweeps[#sweeps + 1] = key
    else
      dels[#dels + 1] = key
    end
  end
end
if #dels > 0 then
  redis.call('HDEL', KEYS[1], unpack(dels))
  redis.call('ZREM', KEYS[2], unpack(dels))
end
if #sets > 0 then
  redis.call('HSET', KEYS[1], unpack(sets))
  redis.call('ZADD', KEYS[2], unpack(sweeps))
end
-- Sweep long-expired records, at least twice as many as this call may write, so the hash
-- cannot outgrow its live records.
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, math.max(100, 2 * #keys))
if #old > 0 then
  redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('ZREM', KEYS[2], unpack(old))
end
return out
