-- Move a stream whose tail was lost to a new epoch, once: only if it is still at the
-- epoch the caller saw (several processes may notice the same loss). The backlog of the
-- old epoch is dropped with it: its seqs no longer say which message they are.
-- KEYS[1] meta hash   KEYS[2] backlog list   ARGV[1] the epoch seen   ARGV[2] the new epoch
-- ARGV[3] backlog TTL (s). Returns the stream's epoch afterwards.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch ~= ARGV[1] then
  return epoch
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'seq', 0, 'durable', 0)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return ARGV[2]
