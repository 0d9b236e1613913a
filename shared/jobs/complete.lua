-- KEYS: the event's completion marker, its attempt history, the ledger hash, the ledger deadlines[, the
-- event's history record[, the handler's consecutive-failure count]].
-- ARGV: the idempotency key, the marker's TTL in seconds[, then the record's field/value pairs].
-- Atomic: a redelivered copy either sees the marker or still finds the event in the ledger. The history
-- record (shared/events/history.py) is updated only while it exists; the failure count (workers/breaker.py)
-- starts again from zero.
redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if KEYS[5] and #ARGV > 2 and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('HSET', KEYS[5], unpack(ARGV, 3))
end
if KEYS[6] then
  redis.call('DEL', KEYS[6])
end
return 1
