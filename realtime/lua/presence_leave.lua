-- A connection leaves, or its lease ran out: forget it; a user's last one is a leave.
-- KEYS as presence_join.lua. ARGV[1..n] members to remove (each "user id \t name \t conn").
-- Returns {users, field1, version1, field2, version2, ...} for the users that left.
local result = {0}
for i = 1, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    local field = string.match(ARGV[i], '^(.*)\t[^\t]*$')
    if redis.call('HINCRBY', KEYS[2], field, -1) <= 0 then
      redis.call('HDEL', KEYS[2], field)
      result[#result + 1] = field
      result[#result + 1] = redis.call('INCR', KEYS[3])
    end
  end
end
result[1] = redis.call('HLEN', KEYS[2])
return result
