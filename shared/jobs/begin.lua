-- KEYS: the event's completion marker, the ledger deadlines[, the event's history record].
-- ARGV: the idempotency key, the new deadline[, then the record's field/value pairs].
-- Returns 1 when the event already completed (the caller skips it); otherwise pushes back the
-- event's ledger deadline (only if it is still in the ledger) so the sweep leaves a running handler alone,
-- and marks the attempt in the event history (shared/events/history.py), only while its record exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 1
end
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
if KEYS[3] and #ARGV > 2 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], unpack(ARGV, 3))
end
return 0
