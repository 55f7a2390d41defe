-- Append one message to a stream's backlog (docs/architecture.md, "The hot path").
-- KEYS[1] meta hash (epoch, seq)   KEYS[2] backlog list, newest first
-- KEYS[3] idempotency key    KEYS[4] archive queue    (each: KEYS[1] again, or "", for none;
--         Redis Cluster refuses "" beside keys of another slot)
-- ARGV[1] new epoch, used only when the stream has none
-- ARGV[2] frame head: '{"type":"message","stream":"S","seq":'
-- ARGV[3] frame tail: '"ts":MS,"data":...,"sender":...}'
-- ARGV[4] backlog size   ARGV[5] backlog TTL (s)   ARGV[6] idempotency TTL (s)
-- KEYS[5] pub/sub channel of the stream's channel-layer group, or none (as above): the new
--         message is published there too, as the layer's group_send would
--         (realtime/layer_channel.py): a msgpack map, the `rt.msg` event of realtime/envelope.py.
--         Declared as a key so that in Redis Cluster a channel of another slot is refused
--         before anything is written.
-- ARGV[7] stream name (for the archive queue entry and the event)
-- ARGV[8] "1": publish with SPUBLISH (Redis Cluster's sharded pub/sub), else PUBLISH
-- Returns {seq, epoch, duplicate (0|1)}. Either everything is written or nothing is.
local meta, log, idem, archive, channel = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if idem == meta then idem = '' end
if archive == meta then archive = '' end
if channel == meta then channel = '' end

local epoch = redis.call('HGET', meta, 'epoch')
if idem ~= '' then
  local seen = redis.call('GET', idem)
  if seen then
    local sep = string.find(seen, '|', 1, true)
    local seen_epoch = string.sub(seen, sep + 1)
    if seen_epoch == epoch then
      return {tonumber(string.sub(seen, 1, sep - 1)), seen_epoch, 1}
    end
  end
end
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', meta, 'epoch', epoch)
end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
local frame = ARGV[2] .. seq .. ',"epoch":"' .. epoch .. '",' .. ARGV[3]
redis.call('LPUSH', log, frame)
redis.call('LTRIM', log, 0, tonumber(ARGV[4]) - 1)
redis.call('EXPIRE', log, ARGV[5])
redis.call('EXPIRE', meta, ARGV[5])
if idem ~= '' then
  redis.call('SET', idem, seq .. '|' .. epoch, 'EX', ARGV[6])
end
if archive ~= '' then
  redis.call('LPUSH', archive, ARGV[7] .. '\n' .. frame)
end
if channel ~= '' then
  redis.call(ARGV[8] == '1' and 'SPUBLISH' or 'PUBLISH', channel, cmsgpack.pack({type = 'rt.msg', s = ARGV[7], e = epoch, n = seq, t = frame}))
end
return {seq, epoch, 0}
