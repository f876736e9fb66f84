-- Enqueue envelopes into one partition; an id already stored is skipped, so retrying an
-- enqueue whose reply was lost never duplicates an item.
-- KEYS: queue, bodies, attempts; ARGV: id, body, id, body, …  Returns how many were added.
local added = 0
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HSET', KEYS[3], ARGV[i], 0)
    redis.call('LPUSH', KEYS[1], ARGV[i])
    added = added + 1
  end
end
return added
