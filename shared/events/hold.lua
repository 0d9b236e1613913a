-- Set a paused handler's job aside (workers/breaker.py): it leaves the in-flight ledger (the held list keeps
-- it now, so the ledger sweep does not queue it again) and its history record says so, in one step; only
-- while the handler is still paused (a resume in between: -1, and the worker runs the job instead).
-- KEYS: the handler's held list, the ledger hash, the ledger deadlines, the event's history record, the
-- paused-handler hash. ARGV: the held entry (JSON), the idempotency key, the handler, then the record's
-- field/value pairs.
if redis.call('HEXISTS', KEYS[5], ARGV[3]) == 0 then
  return -1
end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
if #ARGV > 3 and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[4], unpack(ARGV, 4))
end
return redis.call('LLEN', KEYS[1])
