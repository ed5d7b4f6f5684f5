-- Take a lock with a new fence number, if it is free (or still holds exactly ARGV[5]: a takeover of
-- a holder known to be dead).
-- KEYS[1] = lock key, KEYS[2] = fence counter of that lock
-- ARGV[1] = "<token>:<owner>", ARGV[2] = TTL in ms, ARGV[3] = fence floor (epoch ms of the caller),
-- ARGV[4] = "<pid>@<node>" of the holder, ARGV[5] = expected current value ('' = must be free),
-- ARGV[6] = TTL of the fence counter in ms
-- Returns the new fence (> 0), or 0 when the lock is held by somebody else.
-- The fence is max(INCR counter, floor): strictly increasing while the counter lives, and still
-- above every earlier fence after Redis lost the counter (the floor is a clock reading in ms).
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[5] then
    return 0
end
local fence = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3])
if fence < floor then
    fence = floor
    redis.call('SET', KEYS[2], fence)
end
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence .. ':' .. ARGV[4], 'PX', ARGV[2])
return fence
