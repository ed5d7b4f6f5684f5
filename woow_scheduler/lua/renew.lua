-- Extend a lock's TTL if the caller still owns it; take it back if it vanished.
-- KEYS[1] = lock key, ARGV[1] = full lock value of the owner, ARGV[2] = new TTL in milliseconds
-- Returns 1 when renewed, 2 when the key was gone (Redis restarted empty, or the TTL ran out while
-- the owner stalled) and the owner took it back, 0 when somebody else holds it.
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if not current then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 2
end
return 0
