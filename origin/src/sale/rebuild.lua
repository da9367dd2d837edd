-- rebuild.lua: writes back one event bucket's stock and per-user counts after
-- Redis lost them, computed from PostgreSQL by `rushgate-origin stock rebuild`.
-- Nothing changes if any of the bucket's stock keys exists: the state was not
-- lost (or this bucket is already rebuilt), and overwriting live stock could
-- oversell. All keys share the event bucket's hash tag.
--
-- KEYS[1]    users  hash    user id -> units held in the event (this bucket)
-- KEYS[2..]  stock  string  units left in this bucket, one key per tier
--
-- ARGV[1..]  units  first the units for each stock key, in the same order, then
--                   pairs: user id, units the user holds in this bucket
--
-- Returns 1 if the bucket was rebuilt, 0 if its stock was there.

for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return 0
  end
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i - 1])
end
redis.call('DEL', KEYS[1])
for i = #KEYS, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
