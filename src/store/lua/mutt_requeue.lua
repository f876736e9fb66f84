-- Put a dead pod's in-flight entries back on the queue they came from, as MUTT's janitor does
-- (RPOPLPUSH, oldest first), but only while none of the pod's heartbeats exists: a live pod
-- still owns its list.
-- KEYS[1]: the processing list; KEYS[2]: its source queue; KEYS[3..]: the pod's heartbeat keys.
-- ARGV[1]: most entries to move. Returns the number moved, or -1 if a heartbeat exists.
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return -1 end
end
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
  if not redis.call('RPOPLPUSH', KEYS[1], KEYS[2]) then break end
  moved = moved + 1
end
return moved
