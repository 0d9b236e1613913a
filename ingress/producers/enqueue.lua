-- KEYS: ledger hash, ledger deadlines, then three per message: its queue list, its dedup key, its
--   ordering state hash (shared/jobs/ordering.py; an empty name when the message is not ordered).
-- ARGV: dedup TTL (0: off), ledger deadline, ordering state TTL, then two per message: the message and its
--   idempotency key.
-- Returns 1 for a message pushed, 0 for a duplicate. Atomic per batch, so a retried call after an
-- ambiguous failure never pushes a message twice, every pushed message is in the ledger
-- (shared/jobs/ledger.py) from the moment it is queued, and an ordered message has its sequence number
-- (its key's next, given only to new messages) from that moment too.
local ttl = tonumber(ARGV[1])
local n = (#KEYS - 2) / 3
local out = {}
for i = 1, n do
  local queue, dedup, order = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
  local fresh = 1
  if ttl > 0 then
    if not redis.call('SET', dedup, '1', 'NX', 'EX', ttl) then fresh = 0 end
  end
  if fresh == 1 then
    local message = ARGV[2 + 2 * i]
    local field = ARGV[3 + 2 * i]
    redis.call('LPUSH', queue, message)
    redis.call('HSET', KEYS[1], field, message)
    redis.call('ZADD', KEYS[2], ARGV[2], field)
    -- A copy of a message still in flight (de-duplication off) shares its sequence.
    if order ~= '' and redis.call('HEXISTS', order, field) == 0 then
      redis.call('HSET', order, field, redis.call('HINCRBY', order, 'last', 1))
      redis.call('EXPIRE', order, ARGV[3])
    end
  end
  out[i] = fresh
end
return out
