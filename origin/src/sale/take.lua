-- take.lua: first half of moving units between two buckets of a tier (buckets
-- live in different Cluster slots, so a move is two scripts). Takes up to the
-- wanted units out of the donor bucket and records the transfer in the donor's
-- slot, so a crash before give.lua runs is finished by the sweeper.
--
-- KEYS[1] stock      string  units of the tier left in the donor bucket
-- KEYS[2] transfers  hash    transfer id -> "target_bucket:tier:units", until landed
--
-- ARGV[1] transfer  transfer id
-- ARGV[2] wanted    units wanted (>= 1)
-- ARGV[3] target    target bucket
-- ARGV[4] tier      tier id
--
-- Returns the units taken (0 if the donor is empty).

local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
local units = math.min(stock, tonumber(ARGV[2]))
if units <= 0 then
  return 0
end
redis.call('DECRBY', KEYS[1], units)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. ':' .. ARGV[4] .. ':' .. units)
return units
