-- With RT_REDIS_WAIT_REPLICAS: replicas hold the stream up to seq ARGV[2] of epoch ARGV[1]
-- (a WAIT after its append said so; replication keeps order, so all before it too).
-- Reads then pass on messages up to there only: a failover cannot take back what was seen.
-- KEYS[1] meta hash. Returns the durable seq.
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then
  return 0
end
local durable = tonumber(redis.call('HGET', KEYS[1], 'durable') or '0')
if tonumber(ARGV[2]) > durable then
  durable = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'durable', durable)
end
return durable
