-- Read a range of a stream's backlog by seq, creating the epoch when missing
-- (docs/protocol.md: a stream's epoch exists from its first subscribe or publish).
-- KEYS[1] meta hash (epoch, seq)   KEYS[2] backlog list, newest first
-- ARGV[1] new epoch, used only when the stream has none   ARGV[2] backlog TTL (s)
-- ARGV[3] first seq wanted (>= 1)   ARGV[4] last seq wanted, or -1 for "the latest"
-- ARGV[5] at most this many, counted back from the last (0: no limit)
-- ARGV[6] "1": only up to the `durable` seq (with RT_REDIS_WAIT_REPLICAS: what replicas hold)
-- ARGV[7] at most this many bytes of frames, and at least one frame (0: no budget)
-- ARGV[8] "1": a cut by the budget keeps the oldest frames, else the newest
-- Returns {epoch, latest seq, first seq returned, frames oldest first...}.
-- Because seqs have no holes, seq s sits at index (latest - s): O(returned), no scan.
local meta, log = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', meta, 'epoch', epoch, 'seq', 0)
  redis.call('EXPIRE', meta, ARGV[2])
end
local top = tonumber(redis.call('HGET', meta, 'seq') or '0')
local latest = top
if ARGV[6] == '1' then
  local durable = tonumber(redis.call('HGET', meta, 'durable') or '0')
  if durable < latest then latest = durable end
end
local first = tonumber(ARGV[3])
local last = tonumber(ARGV[4])
if last < 0 or last > latest then last = latest end
local most = tonumber(ARGV[5])
if most > 0 and last - first + 1 > most then first = last - most + 1 end
local oldest_kept = top - redis.call('LLEN', log) + 1
if first < oldest_kept then first = oldest_kept end
if first < 1 then first = 1 end
local result = {epoch, latest, first}
if last < first then return result end
local frames = redis.call('LRANGE', log, top - last, top - first)
local from, to = #frames, 1  -- oldest first
local budget = tonumber(ARGV[7] or '0')
if budget > 0 and #frames > 0 then
  local used, step, i = 0, (ARGV[8] == '1') and -1 or 1, (ARGV[8] == '1') and #frames or 1
  local kept = i
  while i >= 1 and i <= #frames do
    used = used + #frames[i]
    if used > budget and i ~= kept then break end
    kept = i
    i = i + step
  end
  if ARGV[8] == '1' then to = kept else from = kept; result[3] = last - kept + 1 end
end
for i = from, to, -1 do result[#result + 1] = frames[i] end
return result
