-- Renew the leases of one process's connections to a stream. A lease that was swept
-- meanwhile (the process lost Redis for longer than the lease) is taken again and
-- counted for its user again, as presence_join.lua does; the caller gives back, with
-- presence_leave.lua, any of those whose connection left while this call was on its way.
-- KEYS as presence_join.lua. ARGV[1] expiry ms, ARGV[2] key lifetime ms, ARGV[3..n] members.
-- Returns {users, {field1, version1, ...} for the users that are back, {members taken again}}.
local joins, taken = {}, {}
for i = 3, #ARGV do
  if redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    taken[#taken + 1] = ARGV[i]
    local field = string.match(ARGV[i], '^(.*)\t[^\t]*$')
    if redis.call('HINCRBY', KEYS[2], field, 1) == 1 then
      joins[#joins + 1] = field
      joins[#joins + 1] = redis.call('INCR', KEYS[3])
    end
  end
end
for _, key in ipairs(KEYS) do
  redis.call('PEXPIRE', key, ARGV[2])
end
return {redis.call('HLEN', KEYS[2]), joins, taken}
