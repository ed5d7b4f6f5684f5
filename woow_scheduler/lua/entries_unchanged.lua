-- Which prepared entries may go out as prepared: beat built their messages ahead of the due
-- second from the definition and meta it read then; at the due instant it asks, in one call,
-- whether each entry still holds exactly that definition and meta.
-- KEYS[i] entry hash
-- ARGV[2i-1] sha1 of the definition the messages were built from, ARGV[2i] the meta read then ('' = none)
-- Returns one integer per key: 1 = unchanged (publish the prepared messages), 0 = changed or gone
-- (beat reads and plans the entry again, as if nothing had been prepared).
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'definition', 'meta')
  if v[1] and redis.sha1hex(v[1]) == ARGV[2 * i - 1] and (v[2] or '') == ARGV[2 * i] then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
