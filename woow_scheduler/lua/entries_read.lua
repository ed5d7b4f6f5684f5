-- Read a batch of RedBeat entries in one round trip (the reconciler's read phase).
-- KEYS: entry hashes; ARGV[1]: RedBeat schedule zset.
-- Returns, per key, three values: definition, meta, score (each false/nil when missing).
local out = {}
local n = 0
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'definition', 'meta')
  out[n + 1] = v[1]
  out[n + 2] = v[2]
  out[n + 3] = redis.call('ZSCORE', ARGV[1], KEYS[i])
  n = n + 3
end
return out
