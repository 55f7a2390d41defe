-- Remove the leases that ran out (their process died or lost Redis) and count them out
-- of their users, as presence_leave.lua does; only one caller gets each of them.
-- KEYS as presence_join.lua. ARGV[1] now (ms).
-- Returns {users, field1, version1, ...} for the users whose last connection that was.
local result = {0}
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  for _, member in ipairs(gone) do
    local field = string.match(member, '^(.*)\t[^\t]*$')
    if redis.call('HINCRBY', KEYS[2], field, -1) <= 0 then
      redis.call('HDEL', KEYS[2], field)
      result[#result + 1] = field
      result[#result + 1] = redis.call('INCR', KEYS[3])
    end
  end
end
result[1] = redis.call('HLEN', KEYS[2])
return result
