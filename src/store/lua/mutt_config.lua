-- Set (ARGV[1] = 'set', ARGV[2] = value) or delete ('del') one MUTT setting and announce it on
-- MUTT's updates channel with the bare setting name, as MUTT's dynamic_config does.
-- KEYS[1]: the setting's key. ARGV[3]: the channel; ARGV[4]: the setting's name.
if ARGV[1] == 'set' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
