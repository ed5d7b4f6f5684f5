-- Write a batch of RedBeat entries in one round trip (the reconciler's write phase).
-- KEYS: entry hashes; ARGV[1]: RedBeat schedule zset; then four values per key:
--   op ('w' write, 'd' delete), definition ('' = keep the stored one),
--   meta ('' = none; written only when the entry has none: never overwrites a fire), score.
-- Returns the number of keys touched.
local zset = ARGV[1]
for i = 1, #KEYS do
  local base = 2 + (i - 1) * 4
  local key = KEYS[i]
  if ARGV[base] == 'd' then
    redis.call('ZREM', zset, key)
    redis.call('DEL', key)
  else
    if ARGV[base + 1] ~= '' then
      redis.call('HSET', key, 'definition', ARGV[base + 1])
    end
    if ARGV[base + 2] ~= '' then
      redis.call('HSETNX', key, 'meta', ARGV[base + 2])
    end
    redis.call('ZADD', zset, ARGV[base + 3], key)
  end
end
return #KEYS
