-- adjust.lua: adds units to one bucket's stock of a tier, or takes them out,
-- when an operator acts on the ledger check (`rushgate-origin stock adjust`).
-- A take never leaves the stock below zero.
--
-- KEYS[1] stock  string  units of the tier left in this bucket
--
-- ARGV[1] units  units to add; negative to take
--
-- Returns {1, units added (negative: taken)}, or {0, 0} if the stock key is
-- gone (Redis lost the bucket: it is rebuilt first).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0}
end
local stock = tonumber(redis.call('GET', KEYS[1]))
local units = tonumber(ARGV[1])
if units < 0 and stock + units < 0 then
  units = -stock
end
redis.call('INCRBY', KEYS[1], units)
return {1, units}
