-- A connection of a signed-in user arrives: lease it, and count it for its user.
-- KEYS[1] leases: sorted set, member "user id \t name \t connection id", score expiry ms
-- KEYS[2] users: hash "user id \t name" -> live connections of that user, all processes
-- KEYS[3] version: counter of membership changes (clients keep the newest per user)
-- ARGV[1] member, ARGV[2] user field, ARGV[3] expiry ms, ARGV[4] key lifetime ms
-- Returns {version or 0, users}: a version when this is the user's first connection.
local added = redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local version = 0
if added == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
    version = redis.call('INCR', KEYS[3])
    redis.call('PEXPIRE', KEYS[3], ARGV[4])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return {version, redis.call('HLEN', KEYS[2])}
