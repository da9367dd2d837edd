-- give.lua: second half of a move between buckets: lands the units in the target
-- bucket exactly once, however often it is called for one transfer.
--
-- KEYS[1] stock   string  units of the tier left in the target bucket
-- KEYS[2] marker  string  set once this transfer has landed
--
-- ARGV[1] units  units to land
-- ARGV[2] ttl    marker lifetime in seconds
--
-- Returns 1 if the units landed now, 0 if they already had, and -1 if the
-- target's stock key is gone (Redis lost the bucket): nothing changes, the
-- transfer stays recorded in the donor and lands after the bucket is rebuilt,
-- so a rebuild never finds a bucket that looks alive but lost its user counts.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end

if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) == false then
  return 0
end
redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
return 1
