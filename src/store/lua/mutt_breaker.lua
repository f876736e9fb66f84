-- Set a MUTT circuit breaker the way MUTT's own code does, in one step.
-- KEYS: state, failures, open_time. ARGV[1]: 'open' or 'closed'; ARGV[2]: open_time (epoch
-- seconds) for 'open'. Open: state OPEN and open_time (MUTT half-opens it at open_time + its
-- timeout), failures kept. Closed: MUTT's reset (state CLOSED, failures 0, open_time deleted).
if ARGV[1] == 'open' then
  redis.call('SET', KEYS[1], 'OPEN')
  redis.call('SET', KEYS[3], ARGV[2])
else
  redis.call('SET', KEYS[1], 'CLOSED')
  redis.call('SET', KEYS[2], '0')
  redis.call('DEL', KEYS[3])
end
return 1
