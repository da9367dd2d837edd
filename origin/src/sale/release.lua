-- release.lua: give an expired or cancelled order's units back, exactly once.
--
-- The outbox drainer may call this more than once for the same order (a crash
-- between this script and marking the outbox row done); the marker makes every
-- call after the first a no-op. All keys share the event bucket's hash tag.
--
-- KEYS[1] stock    string  units of the tier left in this bucket
-- KEYS[2] users    hash    user id -> units held in the event (this bucket)
-- KEYS[3] marker   string  set once this order's units are back
--
-- ARGV[1] user      user id
-- ARGV[2] quantity  units to give back
-- ARGV[3] ttl       marker lifetime in seconds
--
-- Returns 1 if the units went back now, 0 if they already had, and -1 if the
-- stock key is gone: Redis lost the sale's state (an approved event's stock keys
-- exist from approval on and are never deleted). Then nothing changes, and the
-- release waits in the outbox for `rushgate-origin stock rebuild`, which counts it.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[3]) == false then
  return 0
end
local qty = tonumber(ARGV[2])
redis.call('INCRBY', KEYS[1], qty)
local held = redis.call('HINCRBY', KEYS[2], ARGV[1], -qty)
if held <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
