-- lua/entry_fired.lua for many entries in one call (beat records a whole chunk at once): for each
-- entry, exactly what entry_fired.lua does for one, in the same order.
-- KEYS[1] RedBeat schedule zset, KEYS[2] fired stream, KEYS[2+i] entry hash i
-- ARGV[1] approximate max length of the stream
-- per entry i, ARGV[5i-3 .. 5i+1]: sha1 of the definition beat evaluated, new meta JSON ('' = keep),
--   new score (-1 = exhausted), fired record JSON ('' = no fire), the meta beat read before firing
--   ('' = none; a new meta is written only if the stored one is still that)
-- Returns one integer per entry: 1 written, 0 gone (nothing resurrected), 2 moved on meanwhile
-- (only the fired record is kept: those fires went out).
local out = {}
local maxlen = ARGV[1]
for i = 1, #KEYS - 2 do
  local key = KEYS[2 + i]
  local base = 5 * i - 3
  local sha, meta, score, record, seen = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4]
  local def = redis.call('HGET', key, 'definition')
  if not def then
    out[i] = 0
  else
    local moved = false
    if meta ~= '' then
      local stored = redis.call('HGET', key, 'meta') or ''
      if stored ~= seen then
        moved = true
      end
    end
    if moved then
      out[i] = 2
    else
      if meta ~= '' then
        redis.call('HSET', key, 'meta', meta)
      end
      if redis.sha1hex(def) == sha then
        redis.call('ZADD', KEYS[1], score, key)
      else
        -- the definition changed while beat worked on it: make it due so the next pass re-evaluates it
        redis.call('ZADD', KEYS[1], 0, key)
      end
      out[i] = 1
    end
    if record ~= '' then
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'f', record)
    end
  end
end
return out
