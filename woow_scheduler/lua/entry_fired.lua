-- Record one pass of beat over one entry, atomically, only if the entry still exists.
-- KEYS[1] entry hash, KEYS[2] RedBeat schedule zset, KEYS[3] fired stream
-- ARGV[1] sha1 of the definition beat evaluated
-- ARGV[2] new meta JSON ('' = keep the stored meta)
-- ARGV[3] new score (next nominal fire, epoch seconds; -1 = exhausted)
-- ARGV[4] fired record JSON for the bookkeeping stream ('' = no fire)
-- ARGV[5] approximate max length of the stream
-- ARGV[6] the meta beat read before firing ('' = none); a new meta is written only if the stored
--         one is still that: a paused old leader never moves an entry back over a newer leader's
--         (or a sync's) write
-- Returns 1 when written, 0 when the entry is gone (deleted by a sync: nothing is resurrected),
-- 2 when the entry moved on meanwhile (only the fired record is kept: those fires went out).
local def = redis.call('HGET', KEYS[1], 'definition')
if not def then
  return 0
end
if ARGV[2] ~= '' and ARGV[6] ~= nil then
  local stored = redis.call('HGET', KEYS[1], 'meta') or ''
  if stored ~= ARGV[6] then
    if ARGV[4] ~= '' then
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'f', ARGV[4])
    end
    return 2
  end
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'meta', ARGV[2])
end
if redis.sha1hex(def) == ARGV[1] then
  redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
else
  -- the definition changed while beat worked on it: make it due so the next pass re-evaluates it
  redis.call('ZADD', KEYS[2], 0, KEYS[1])
end
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'f', ARGV[4])
end
return 1
