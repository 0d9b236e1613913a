-- The ingress's write to the event history (shared/events/history.py), one call per batch of queued jobs,
-- sent in the same round trip as the script that queues them (before it: a worker never sees a job
-- whose record is still to come).
-- KEYS[1]: the event index. ARGV: the key prefix, now, retention (s), max events, envelope TTL (s), then
-- per event its id, its static part (JSON) and its signed job ('' when none is kept).
-- A record that exists (a duplicate delivery) is left as it is. Both bounds are amortised: each entry
-- leaves the index once, by age (its keys expire by themselves) or by count (at most 1000 per call).
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local envelope_ttl = tonumber(ARGV[5])
for i = 6, #ARGV, 3 do
  local id = ARGV[i]
  local key = prefix .. ':' .. id
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'm', ARGV[i + 1], 's', 'queued')
    redis.call('EXPIRE', key, retention)
    redis.call('ZADD', KEYS[1], now, id)
    if ARGV[i + 2] ~= '' then
      redis.call('SET', prefix .. '-envelope:' .. id, ARGV[i + 2], 'EX', envelope_ttl)
    end
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - retention)
local over = redis.call('ZCARD', KEYS[1]) - max
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[1], math.min(over, 1000))
  for j = 1, #old, 2 do
    redis.call('UNLINK', prefix .. ':' .. old[j], prefix .. '-envelope:' .. old[j])
  end
end
return 1
