-- Remove the presence entries whose lease ran out (their process died or lost Redis).
-- KEYS[1] presence sorted set (member: "user id \t name \t connection id", score: expiry ms)
-- ARGV[1] now (ms). Returns the removed members; only one caller gets each of them.
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
end
return gone
