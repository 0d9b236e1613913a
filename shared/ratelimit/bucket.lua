-- Shared head of acquire.lua and learn.lua: one budget's limit and its log of calls.
-- KEYS[1]: the budget's hash (limit, window, probe, dtat, seq); KEYS[2]: the endpoint's learned limit
-- (limit, window); KEYS[3]: the budget's log, a sorted set of the times (ms) its calls were (or are
-- reserved to be) sent. ARGV[1], ARGV[2]: the documented default limit and window (ms); ARGV[3], ARGV[4]:
-- the slack added to a window (at least ARGV[3] ms, at least ARGV[4] of the window), so a call delayed
-- on its way to Frame.io still arrives within its budget; ARGV[5]: the keys' TTL (ms).
-- A call may go at the first time when the log holds fewer than `limit` calls in the `span` (window +
-- slack) before it: never more than `limit` calls in any window, stricter than Frame.io's leaky bucket.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- The budget's limit: learned for it, else learned for its endpoint, else the documented default
-- (the third value says whether it was learned).
local function limit_of(fields)
  local limit, window = tonumber(fields[1]), tonumber(fields[2])
  if not limit or not window or limit < 1 or window < 1 then
    local learned = redis.call('HMGET', KEYS[2], 'limit', 'window')
    limit, window = tonumber(learned[1]), tonumber(learned[2])
  end
  if not limit or not window or limit < 1 or window < 1 then
    return tonumber(ARGV[1]), tonumber(ARGV[2]), false
  end
  return limit, window, true
end

local function span_of(window)
  return window + math.max(tonumber(ARGV[3]), window * tonumber(ARGV[4]))
end

-- Log a call at `at` (a unique member per call: two calls may share a time).
local function log_call(at)
  redis.call('ZADD', KEYS[3], at, redis.call('HINCRBY', KEYS[1], 'seq', 1))
end

local budget = redis.call('HMGET', KEYS[1], 'limit', 'window')
