#!lua flags=no-writes
-- One read of a MUTT deployment, at one instant: every key is read with the command its type
-- needs, after checking the type (a key of another type is reported, never read wrongly).
-- KEYS: the keys; ARGV[i]: how to read KEYS[i]: 'list' (LLEN), 'string' (GET) or 'ttl'
-- (PTTL of a key of any type). ARGV[#KEYS + 1 ..]: an optional page: the index of its key in
-- KEYS, then LRANGE start and stop.
-- Returns one {type, value} per key ({type} when the type is not the expected one, {'none'}
-- when absent), then the page's entries (or an empty table).
local out = {}
for i, key in ipairs(KEYS) do
  local how = ARGV[i]
  local found = redis.call('TYPE', key)['ok']
  if found == 'none' then
    out[i] = {'none'}
  elseif how == 'ttl' then
    out[i] = {found, redis.call('PTTL', key)}
  elseif how == 'list' and found == 'list' then
    out[i] = {found, redis.call('LLEN', key)}
  elseif how == 'string' and found == 'string' then
    out[i] = {found, redis.call('GET', key)}
  else
    out[i] = {found}
  end
end
local page = {}
local at = tonumber(ARGV[#KEYS + 1])
if at then
  local key = KEYS[at]
  if redis.call('TYPE', key)['ok'] == 'list' then
    page = redis.call('LRANGE', key, tonumber(ARGV[#KEYS + 2]), tonumber(ARGV[#KEYS + 3]))
  end
end
out[#KEYS + 1] = page
return out
