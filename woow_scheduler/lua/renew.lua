-- Extend a lock's TTL if the caller still owns it.  Never takes a key another run holds; re-takes a
-- vanished key (Redis lost it, or the TTL ran out while the owner stalled) only when nobody took the
-- lock since the caller did (the fence counter still shows the caller's fence, or was lost with the
-- key), and then with a new fence.
-- KEYS[1] = lock key, KEYS[2] = fence counter
-- ARGV[1] = full lock value of the owner, ARGV[2] = TTL in ms, ARGV[3] = the owner's fence,
-- ARGV[4] = "<token>:<owner>", ARGV[5] = "<pid>@<node>", ARGV[6] = fence floor (epoch ms),
-- ARGV[7] = TTL of the fence counter in ms, ARGV[8] = 'extend-only' to never take the key (the backup
-- renewer of worker/backup.py: it only extends a key that still holds exactly ARGV[1])
-- Returns {1, fence} renewed, {2, new fence} re-taken, {0, 0} lost (held by another or taken since).
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tonumber(ARGV[3])}
end
if current or ARGV[8] == 'extend-only' then
    return {0, 0}
end
local counter = redis.call('GET', KEYS[2])
if counter and tonumber(counter) ~= tonumber(ARGV[3]) then
    return {0, 0}
end
local fence = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[6])
if fence < floor then
    fence = floor
    redis.call('SET', KEYS[2], fence)
end
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('SET', KEYS[1], ARGV[4] .. ':' .. fence .. ':' .. ARGV[5], 'PX', ARGV[2])
return {2, fence}
