-- KEYS: queue list, ledger hash, ledger deadlines, then one dedup key per message.
-- ARGV: dedup TTL (0: off), ledger deadline, the messages, then their idempotency keys.
-- Returns 1 for a message pushed, 0 for a duplicate. Atomic per batch, so a retried call after an
-- ambiguous failure never pushes a message twice, and every pushed message is in the ledger
-- (shared/jobs/ledger.py) from the moment it is queued.
local ttl = tonumber(ARGV[1])
local n = #KEYS - 3
local out = {}
for i = 1, n do
  local fresh = 1
  if ttl > 0 then
    if not redis.call('SET', KEYS[3 + i], '1', 'NX', 'EX', ttl) then fresh = 0 end
  end
  if fresh == 1 then
    local message = ARGV[2 + i]
    local field = ARGV[2 + n + i]
    redis.call('LPUSH', KEYS[1], message)
    redis.call('HSET', KEYS[2], field, message)
    redis.call('ZADD', KEYS[3], ARGV[2], field)
  end
  out[i] = fresh
end
return out
