-- The occupancy of one stream: connections on all processes and distinct signed-in users.
-- KEYS[1] occupancy hash: process id -> "connections:expiry ms" (written by that process)
-- KEYS[2] users hash of presence (user -> live connections)
-- ARGV[1] now (ms). A process that stopped writing drops out once its expiry passed.
local connections = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local count, expiry = string.match(fields[i + 1], '^(%d+):(%d+)$')
  if count and tonumber(expiry) > tonumber(ARGV[1]) then
    connections = connections + tonumber(count)
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
return {connections, redis.call('HLEN', KEYS[2])}
