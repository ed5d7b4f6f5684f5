-- Delete a lock only if the caller still owns it (compare-and-delete).
-- KEYS[1] = lock key, ARGV[1] = full lock value of the owner
-- Optional: KEYS[2] = the lock's fence counter, ARGV[2] = its TTL in ms: bumped on release, so that
-- a renewal of this owner still in flight (its helper process) can no longer re-take the key.
-- Returns 1 when released, 0 when the lock is gone or held by someone else.
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    if KEYS[2] then
        redis.call('INCR', KEYS[2])
        redis.call('PEXPIRE', KEYS[2], ARGV[2])
    end
    return 1
end
return 0
