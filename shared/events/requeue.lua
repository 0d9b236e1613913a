-- Queue held jobs again, each with its in-flight ledger entry, as the ingress queues a job (Redis broker).
-- KEYS: the held list, the ledger hash, the ledger deadlines, then per job its queue and its history record.
-- ARGV: the ledger deadline, then per job the held entry (as stored), its idempotency key, its message.
-- An entry another resumer took already (LREM finds nothing) is skipped: each is queued once.
local moved = 0
local k = 4
for i = 2, #ARGV, 3 do
  local queue, record = KEYS[k], KEYS[k + 1]
  k = k + 2
  if redis.call('LREM', KEYS[1], -1, ARGV[i]) == 1 then
    redis.call('LPUSH', queue, ARGV[i + 2])
    redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 2])
    redis.call('ZADD', KEYS[3], ARGV[1], ARGV[i + 1])
    if redis.call('EXISTS', record) == 1 then
      redis.call('HSET', record, 's', 'queued')
    end
    moved = moved + 1
  end
end
return moved
