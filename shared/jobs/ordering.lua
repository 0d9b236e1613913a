-- Per-key ordering (shared/jobs/ordering.py). One script, three entry points, so that every change to a
-- key's state is atomic with the queue and ledger writes it implies.
-- KEYS: the key's state hash (last, next, idempotency key -> sequence), its parked hash (sequence ->
--   "queue\nidempotency key\nmessage", or "" for a sequence that will never run), the waiting set, the
--   ledger hash, the ledger deadlines.
-- ARGV: entry point ("gate", "finish", "skip"), the ordering key, the idempotency key, now, the waiting
--   deadline (now + the hold bound), the ledger deadline, the state's TTL, the parked value (gate only;
--   without one, a message to be parked is answered {2, seq} and nothing changes).
-- A released message goes to the front of the queue it is named with (RPUSH, like kombu's own restore: it
-- has waited its turn already). That queue is data, not a declared key: single-node Redis only, as the
-- rest of the queue layout.
local state, parked, waiting, ledger, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local mode, key, idem = ARGV[1], ARGV[2], ARGV[3]

-- From sequence `nxt` on, skip the sequences marked "" and release the first parked message; store the new next.
local function release_from(nxt)
  local released = 0
  while true do
    local value = redis.call('HGET', parked, nxt)
    if not value then break end
    redis.call('HDEL', parked, nxt)
    if value ~= '' then
      local q_end = string.find(value, '\n', 1, true)
      local k_end = string.find(value, '\n', q_end + 1, true)
      local message_idem = string.sub(value, q_end + 1, k_end - 1)
      local message = string.sub(value, k_end + 1)
      redis.call('RPUSH', string.sub(value, 1, q_end - 1), message)
      redis.call('HSET', ledger, message_idem, message)
      redis.call('ZADD', due, ARGV[6], message_idem)
      released = nxt
      break
    end
    nxt = nxt + 1
  end
  redis.call('HSET', state, 'next', nxt)
  redis.call('EXPIRE', state, ARGV[7])
  if redis.call('HLEN', parked) == 0 then
    redis.call('ZREM', waiting, key)
  else
    redis.call('ZADD', waiting, ARGV[5], key)
  end
  return released
end

if mode == 'skip' then
  -- The head has not been seen within the hold bound (lost, or never to arrive): the earliest parked runs.
  local deadline = redis.call('ZSCORE', waiting, key)
  if not deadline or tonumber(deadline) > tonumber(ARGV[4]) then return {0, 0} end
  local low = nil
  for _, field in ipairs(redis.call('HKEYS', parked)) do
    local seq = tonumber(field)
    if seq and (low == nil or seq < low) then low = seq end
  end
  if low == nil then
    redis.call('ZREM', waiting, key)
    return {0, 0}
  end
  local nxt = tonumber(redis.call('HGET', state, 'next') or '1')
  return {nxt, release_from(low)}
end

local seq = redis.call('HGET', state, idem)
if not seq then return {0, 0} end -- not (or no longer) sequenced: runs unordered
seq = tonumber(seq)
local nxt = tonumber(redis.call('HGET', state, 'next') or '1')

if mode == 'gate' then
  if seq == nxt then
    redis.call('ZADD', waiting, 'XX', ARGV[5], key) -- the head is alive
    return {0, seq}
  end
  if seq < nxt then return {0, seq} end -- its turn was skipped: runs at once
  if ARGV[8] == '' then return {2, seq} end -- to be parked: the caller sends the message
  -- Parked: owned by the parked hash from now on, not by the ledger (its sweep would queue it again).
  redis.call('HSET', parked, seq, ARGV[8])
  redis.call('HDEL', ledger, idem)
  redis.call('ZREM', due, idem)
  redis.call('ZADD', waiting, 'NX', ARGV[5], key)
  redis.call('EXPIRE', state, ARGV[7])
  return {1, seq}
end

-- finish: the message is done with (completed, dead-lettered, or refused and never to run).
redis.call('HDEL', state, idem)
if seq > nxt then
  -- Refused while an earlier message holds the key: its turn is skipped when it comes.
  redis.call('HSET', parked, seq, '')
  redis.call('ZADD', waiting, 'NX', ARGV[5], key)
  return {0, 0}
end
if seq < nxt then return {0, 0} end
return {seq, release_from(seq + 1)}
