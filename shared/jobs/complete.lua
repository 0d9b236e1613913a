-- KEYS: the event's completion marker, its attempt history, the ledger hash, the ledger deadlines.
-- ARGV: the idempotency key, the marker's TTL in seconds.
-- Atomic: a redelivered copy either sees the marker or still finds the event in the ledger.
redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
