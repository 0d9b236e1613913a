-- Admit one step to an interaction (shared/actions/state.py, RedisActionState), atomically: the first
-- step binds the interaction to its owner and counts it in that account's quota; a later step gets the
-- stored owner back, to be compared by the caller.
-- KEYS[1] the owner, KEYS[2] the account's live interactions (sorted set scored by expiry),
-- KEYS[3..5] the interaction's history, context and size, cleared when the interaction is created.
-- ARGV[1] the step's owner, ARGV[2] the interaction id, ARGV[3] now (s), ARGV[4] ttl (s), ARGV[5] quota.
-- Returns the stored owner; "" when this step created the interaction; "quota" when the account is full.
local stored = redis.call('GET', KEYS[1])
if stored then
  return stored
end
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  return 'quota'
end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[2])
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
return ''
