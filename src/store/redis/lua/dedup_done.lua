-- Record successful claims: bit <slot> of each claim call's bitmap, one BITFIELD per call and
-- 500 slots (Lua's stack limits each unpack).
-- KEYS: the bitmaps of calls whose records are in one partition.
-- ARGV: per key: TTL ms (its window's end plus the grace), n, then n slots.
local at = 1
for _, key in ipairs(KEYS) do
  local ttl, n = ARGV[at], tonumber(ARGV[at + 1])
  for first = 1, n, 500 do
    local ops = {}
    for k = first, math.min(n, first + 499) do
      local i = 4 * (k - first) + 1
      ops[i] = 'SET'; ops[i + 1] = 'u1'; ops[i + 2] = '#' .. ARGV[at + 1 + k]; ops[i + 3] = 1
    end
    redis.call('BITFIELD', key, unpack(ops))
  end
  redis.call('PEXPIRE', key, ttl)
  at = at + 2 + n
end
return 0
