-- prune.lua: removes the consumers of a stream's group that stopped: no pending
-- entries and idle for at least a given time. Checking and removing in one
-- script means a consumer cannot take entries in between, so removing one never
-- drops an entry from the group's pending list.
--
-- KEYS[1] orders  stream  the bucket's reservations
--
-- ARGV[1] group     consumer group
-- ARGV[2] idle      minimum idle time, ms
-- ARGV[3] caller    the calling consumer, never removed
--
-- Returns the names of the consumers removed.

local removed = {}
for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local consumer = {}
  for i = 1, #info, 2 do
    consumer[info[i]] = info[i + 1]
  end
  if consumer['name'] ~= ARGV[3] and consumer['pending'] == 0
      and consumer['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], consumer['name'])
    removed[#removed + 1] = consumer['name']
  end
end
return removed
