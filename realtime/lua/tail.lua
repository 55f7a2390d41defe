-- What the position check needs of one stream: its epoch, its counter, and the frame
-- stored under one seq (the last one this process passed on), to tell a lost or
-- rewritten tail (a failover to a replica that lagged, a restart that lost the last
-- second of its append-only file) from a stream that only moved on.
-- KEYS[1] meta hash (epoch, seq)   KEYS[2] backlog list, newest first
-- ARGV[1] the seq whose frame is wanted (0: none)
-- ARGV[2] "1": the counter only up to the `durable` seq (see read.lua)
-- Returns {epoch or false, latest seq, frame or false}; creates nothing.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local top = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local latest = top
if ARGV[2] == '1' then
  local durable = tonumber(redis.call('HGET', KEYS[1], 'durable') or '0')
  if durable < latest then latest = durable end
end
local seq = tonumber(ARGV[1])
local frame = false
if epoch and seq > 0 and seq <= latest then
  frame = redis.call('LINDEX', KEYS[2], top - seq)
end
return {epoch, latest, frame}
