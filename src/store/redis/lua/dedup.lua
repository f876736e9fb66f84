-- Compare-and-set on idempotency records, the rare half of dedup (claims alone are plain
-- pipelined SETs, successes bits of their call's bitmap). Each KEYS[i] is one record, a string
-- 'sending:<hold ms>:<window end ms>:<call>:<slot>:<owner>' by the workers' clock, with a Redis
-- TTL a grace period longer than the later of the two; its claim succeeded once bit <slot> of
-- '<done prefix><call>' is set. ('done:<expiry ms>', an older form, is read as a success.)
-- ARGV[1] = now ms, ARGV[2] = owner, ARGV[3] = grace ms, ARGV[4] = this partition's done
-- prefix, ARGV[5] = call, ARGV[6] = window end ms; then per key: op, duration ms, slot.
--   'take'    claim a record whose claim answer showed it lapsed (or absent);
--   'hold'    extend this owner's live claim; 'release' forget it.
-- Release and hold apply only to a live claim of this owner: a lapsed claim may be another
-- worker's by now. Returns per key 'claimed', 'done' or 'sending' for take; '' otherwise.
local now, owner, grace = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local done_prefix, call, window_end = ARGV[4], ARGV[5], tonumber(ARGV[6])
-- 'done', 'sending' (live, with its holder and the text after its hold) or '' (lapsed, absent).
local function state_of(value)
  if not value then return '' end
  local kind, rest = string.match(value, '^(%a+):(.*)$')
  if kind == 'done' then
    if (tonumber(rest) or 0) > now then return 'done' end
    return ''
  end
  if kind ~= 'sending' then return '' end
  local hold, tail = string.match(rest, '^(%d+)(:.*)$')
  if not hold then return '' end
  local wend, claim_call, slot, holder = string.match(tail, '^:(%d+):(%x+):(%d+):(.*)$')
  if not wend then return '' end
  if redis.call('GETBIT', done_prefix .. claim_call, slot) == 1 then
    if tonumber(wend) > now then return 'done' end
    return ''
  end
  if tonumber(hold) > now then return 'sending', holder, tail end
  return ''
end
local out = {}
for n, key in ipairs(KEYS) do
  local op, span, slot = ARGV[4 + 3 * n], tonumber(ARGV[5 + 3 * n]), ARGV[6 + 3 * n]
  local state, holder, tail = state_of(redis.call('GET', key))
  local answer = ''
  local mine = state == 'sending' and holder == owner
  if op == 'take' then
    if state ~= '' then
      answer = state
    else
      local hold = now + span
      redis.call('SET', key, 'sending:' .. string.format('%.0f', hold) .. ':' ..
        string.format('%.0f', window_end) .. ':' .. call .. ':' .. slot .. ':' .. owner,
        'PX', math.max(hold, window_end) - now + grace)
      answer = 'claimed'
    end
  elseif op == 'hold' and mine then
    redis.call('SET', key, 'sending:' .. string.format('%.0f', now + span) .. tail, 'KEEPTTL')
    if redis.call('PTTL', key) < span + grace then redis.call('PEXPIRE', key, span + grace) end
  elseif op == 'release' and mine then
    redis.call('DEL', key)
  end
  out[n] = answer
end
return out
