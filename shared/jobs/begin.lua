-- KEYS: the event's completion marker, the ledger deadlines. ARGV: the idempotency key, the new deadline.
-- Returns 1 when the event already completed (the caller skips it); otherwise pushes back the
-- event's ledger deadline (only if it is still in the ledger) so the sweep leaves a running handler alone.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 1
end
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
return 0
