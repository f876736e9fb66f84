-- One bounded batch of a MUTT DLQ action, atomically: each entry is taken out of the DLQ by its
-- exact text (LREM from the tail, the oldest copy) and, only if it was still there, pushed where
-- it goes: the replay target (with its counters reset), the dead list, or nowhere (purge).
-- KEYS[1]: the DLQ; KEYS[2]: the replay target; KEYS[3]: the dead list.
-- ARGV: triples (entry as read, destination 'queue' | 'dead' | 'purge', text to push).
-- Returns {to the queue, to the dead list, purged, no longer there}.
local queued, dead, purged, missing = 0, 0, 0, 0
for i = 1, #ARGV, 3 do
  if redis.call('LREM', KEYS[1], -1, ARGV[i]) == 1 then
    local dest = ARGV[i + 1]
    if dest == 'queue' then
      redis.call('LPUSH', KEYS[2], ARGV[i + 2])
      queued = queued + 1
    elseif dest == 'dead' then
      redis.call('LPUSH', KEYS[3], ARGV[i + 2])
      dead = dead + 1
    else
      purged = purged + 1
    end
  else
    missing = missing + 1
  end
end
return {queued, dead, purged, missing}
