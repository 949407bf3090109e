--[[
Admits series against an organization's active-series limit: a series already active is refreshed; a new
one is added while the organization is under its limit, else refused. Series without a sample for
windowMs stop counting.

KEYS[1]    active_series:{organizationId}  sorted set: "<serviceId>:<seriesId>", score = last seen (ms)
ARGV[1]    now (ms)
ARGV[2]    windowMs
ARGV[3]    limit
ARGV[4..]  the series seen ("<serviceId>:<seriesId>")
Reply: { active count after the call, { positions (1-based, among ARGV[4..]) of the refused series } }
]]
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local refused = {}
for i = 4, #ARGV do
  local member = ARGV[i]
  if redis.call('ZSCORE', KEYS[1], member) then
    redis.call('ZADD', KEYS[1], 'XX', 'GT', now, member)
  elseif count < limit then
    redis.call('ZADD', KEYS[1], now, member)
    count = count + 1
  else
    refused[#refused + 1] = i - 3
  end
end
redis.call('PEXPIRE', KEYS[1], window)
return { count, refused }
