-- Which prepared entries may go out as prepared: beat built their messages ahead of the due
-- second from the definition and meta it read then; at the due instant it asks, in one call,
-- whether each entry still holds exactly that definition and meta.
-- KEYS[i] entry hash
-- ARGV[2i-1] sha1 of the definition the messages were built from, ARGV[2i] the meta read then ('' = none)
-- Returns one integer per key: 1 = unchanged (publish the prepared messages), 0 = changed or gone
-- (beat reads and plans the entry again, as if nothing had been prepared).
-- The definition's sha1 is the one the sync wrote with it (field 'sha', written only by
-- entries_write.lua): no definition is hashed here at the due instant.  An entry whose 'sha' differs
-- or is missing (written by an older version, or by RedBeat's own save) has its definition hashed.
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'sha', 'meta')
  local ok = false
  if (v[2] or '') == ARGV[2 * i] then
    if v[1] == ARGV[2 * i - 1] then
      ok = true
    else
      local def = redis.call('HGET', key, 'definition')
      ok = def and redis.sha1hex(def) == ARGV[2 * i - 1]
    end
  end
  if ok then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
