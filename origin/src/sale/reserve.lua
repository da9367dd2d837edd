-- reserve.lua: hold stock for one buyer, atomically.
--
-- Idempotency, the per-user limit, the stock check and deduction, and the hand-off
-- to the order worker happen in one script, so no interleaving of requests can
-- oversell, exceed a user's limit, or reserve twice for one purchase token.
-- Every key shares the event bucket's hash tag: one Redis Cluster slot.
--
-- KEYS[1] stock    string  units of the tier left in this bucket
-- KEYS[2] users    hash    user id -> units held in the event (this bucket)
-- KEYS[3] nonce    string  reservation id made with this purchase token
-- KEYS[4] orders   stream  reservations for the order worker (field "r": record)
-- KEYS[5] queued   hash    reservation id -> record, until the order row exists
-- KEYS[6] funnel   hash    counters: reserved, sold_out_rejections, limit_rejections
--
-- ARGV[1] reservation  id of the new reservation (UUIDv7, chosen by the caller)
-- ARGV[2] user         user id
-- ARGV[3] quantity     units asked for (>= 1)
-- ARGV[4] limit        per-user limit
-- ARGV[5] expiry       unix seconds at which the nonce record may expire
-- ARGV[6] record       the reservation record (JSON, origin/src/sale/record.rs)
--
-- Returns {status, value, number}:
--   {"reserved", reservation id, units left in the bucket}
--   {"replay",   original reservation id, 0}
--   {"sold_out", "", units left in the bucket (fewer than asked)}
--   {"limit",    "", units the user already holds}

local prior = redis.call('GET', KEYS[3])
if prior then
  return {'replay', prior, 0}
end

local user, qty, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local held = tonumber(redis.call('HGET', KEYS[2], user) or '0')
if held + qty > limit then
  redis.call('HINCRBY', KEYS[6], 'limit_rejections', 1)
  return {'limit', '', held}
end

local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
if stock < qty then
  redis.call('HINCRBY', KEYS[6], 'sold_out_rejections', 1)
  return {'sold_out', '', stock}
end

local left = redis.call('DECRBY', KEYS[1], qty)
redis.call('HINCRBY', KEYS[2], user, qty)
redis.call('SET', KEYS[3], ARGV[1], 'EXAT', ARGV[5])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[6])
redis.call('XADD', KEYS[4], '*', 'r', ARGV[6])
redis.call('HINCRBY', KEYS[6], 'reserved', 1)
return {'reserved', ARGV[1], left}
