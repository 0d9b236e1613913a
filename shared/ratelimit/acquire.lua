-- Spend one call of the budget (after bucket.lua). ARGV[6]: the longest wait (ms) worth reserving;
-- ARGV[7]: how long (ms) the first call of a budget whose limit nobody has learned yet (the probe) holds
-- the others back; ARGV[8]: the longest a refused caller will stay away (ms, a worker's deferral cap).
-- Returns {status, wait ms, limit, window ms, calls in the log}:
--   1: a call reserved `wait` ms from now (the caller sleeps that long, then sends);
--   0: the wait would be longer than ARGV[6], nothing spent: come back in `wait` ms. Refused callers are
--      given successive times one interval (span / limit) apart (`dtat`), so a crowd refused together
--      comes back at the rate the budget frees up, not all at once; a caller told to come back later than
--      ARGV[8] (it will ask again sooner) takes no place in that schedule;
--   2: a probe is out: ask again after `wait` ms (its answer's headers will say the real limit; calls
--      reserved under a guessed limit could not be taken back);
--   3: like 1, and this call is the probe.
local limit, window, learned = limit_of(budget)
local span = span_of(window)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - span))
local logged = redis.call('ZCARD', KEYS[3])
local at = now
if logged >= limit then
  local oldest = redis.call('ZRANGE', KEYS[3], logged - limit, logged - limit, 'WITHSCORES')
  at = math.max(now, tonumber(oldest[2]) + span)
end
local wait = at - now
if wait > tonumber(ARGV[6]) then
  local back = at
  local scheduled = tonumber(redis.call('HGET', KEYS[1], 'dtat'))
  if scheduled and scheduled > back then
    back = scheduled
  end
  if back - now <= tonumber(ARGV[8]) then
    redis.call('HSET', KEYS[1], 'dtat', tostring(back + span / limit))
  end
  return {0, math.ceil(back - now), limit, window, logged}
end
local status = 1
if not learned then
  local probe = tonumber(redis.call('HGET', KEYS[1], 'probe'))
  if probe and probe > now then
    return {2, math.min(50, math.ceil(probe - now)), limit, window, logged}
  end
  redis.call('HSET', KEYS[1], 'probe', tostring(now + tonumber(ARGV[7])))
  status = 3
end
log_call(at)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return {status, math.ceil(wait), limit, window, logged + 1}
