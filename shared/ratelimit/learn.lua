-- What an answer's x-ratelimit-* headers said (after bucket.lua). ARGV[6], ARGV[7]: the limit and the
-- window (ms); ARGV[8]: calls remaining (-1: not given); ARGV[9]: the endpoint hash's TTL (ms).
-- The limit is kept for the budget and its endpoint, and the log is made to hold at least as many calls
-- in the last window as Frame.io says its bucket does (limit - remaining; all of it after a 429): other
-- clients of the same user spend the same budget. Returns the calls in the log.
local limit, window, remaining = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
redis.call('HSET', KEYS[1], 'limit', limit, 'window', window)
redis.call('HDEL', KEYS[1], 'probe')
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('HSET', KEYS[2], 'limit', limit, 'window', window)
redis.call('PEXPIRE', KEYS[2], ARGV[9])
if remaining >= 0 and remaining < limit then
  local span = span_of(window)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - span))
  local recent = redis.call('ZCOUNT', KEYS[3], now - span, now)
  for _ = 1, (limit - remaining) - recent do
    log_call(now)
  end
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
return redis.call('ZCARD', KEYS[3])
