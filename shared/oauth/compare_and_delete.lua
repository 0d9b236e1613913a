-- Delete KEYS[1] only while it still holds ARGV[1] (the record the caller loaded): a record another
-- process replaced in the meantime (a new sign-in, a refresh) survives. Returns 1 if deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
