-- KEYS[1]: one event's history record. ARGV: field/value pairs to set on it ('' removes the field).
-- Only while the record exists: a worker never recreates a record the bounds removed.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
