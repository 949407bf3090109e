--[[
Scores a batch of samples of one service against their baselines, then learns from them, atomically.

KEYS[1]    recent_anomalies:{serviceId}   sorted set, score = sample time (ms)
KEYS[2]    baseline_index:{serviceId}     set of the service's metric names
KEYS[3..]  baseline:{serviceId}:<metric>  hash n, mean, var, lastTs, at, ttlAt
ARGV[1]    "<minSamples> <alpha> <windowMs> <triggerWindowMs> <baselineTtlMs> <now ms>"
ARGV[2]    per baseline key, in KEYS order: "<metric> <z threshold> <direction u|d|b>;" …
ARGV[3]    per sample: "<key index> <value> <time ms | -1 = arrival> <suppressed up to 0|1|2>;" …

Every argument, reply element and redis.call costs more than the arithmetic here (on both sides: the
client encodes each argument separately), so the settings and the batch travel as three packed strings, the reply carries only counts and anomalies, and a series' TTL and index entry are
refreshed at most once an hour (field ttlAt), not on every sample.

Each sample is scored before it is added. Values beyond the threshold band enter the baseline clipped to
it, so one spike barely moves it while a lasting shift is learned in a bounded number of samples.
A sample older than the series' last one is kept for the record but does not move the baseline; a sample
without a timestamp, or with one ahead of `now`, is taken as arriving now, never older than its series
(concurrent callers' clocks may disagree by a millisecond, and such a sample must still count).

Reply: { recent, learning, stale, then 6 fields per anomaly: sample position (1-based), z, expected
(strings), severity (1 warning, 2 critical), suppressed (0 | 1), time }.
recent = unsuppressed anomalies of the service within triggerWindowMs (0 unless this batch had one).
]]
local settings = {}
for word in string.gmatch(ARGV[1], '[^ ]+') do
  settings[#settings + 1] = tonumber(word) or error('score-samples: setting is not a number: ' .. word)
end
if #settings ~= 6 then error('score-samples: expected 6 settings, got ' .. #settings) end
local minSamples, alphaFloor, windowMs, triggerWindowMs, ttl, now = unpack(settings)
local TTL_REFRESH_MS = 3600000

local series = {}
local k = 3
for metric, threshold, direction in string.gmatch(ARGV[2], '([^ ;]+) ([^ ;]+) ([udb]);') do
  series[k] = { metric = metric, threshold = tonumber(threshold), direction = direction }
  k = k + 1
end

local reply = { 0, 0, 0 }
local learning, stale, position = 0, 0, 0
local anomalous = false

for ki, vs, ts, ss in string.gmatch(ARGV[3], '(%d+) ([^ ;]+) ([^ ;]+) (%d);') do
  position = position + 1
  local key = KEYS[tonumber(ki)]
  local s = series[tonumber(ki)]
  local v = tonumber(vs)
  local t = tonumber(ts)

  local h = redis.call('HMGET', key, 'n', 'mean', 'var', 'lastTs', 'ttlAt')
  local n = tonumber(h[1]) or 0
  local mean = tonumber(h[2]) or 0
  local var = tonumber(h[3]) or 0
  local lastTs = tonumber(h[4])
  local ttlAt = tonumber(h[5]) or 0
  -- No timestamp, or one ahead of the clock (an agent's fast clock; the API allows 5 minutes): the sample
  -- counts as arriving now. Its stated time must not become the series' last one, or every correctly
  -- timed sample after it would look stale (unscored, unlearned) until the clocks meet.
  if t < 0 or t > now then t = math.max(now, lastTs or 0) end

  if lastTs and t < lastTs then
    stale = stale + 1
  else
    -- A flat series has no variance: measure deviations against 1% of its level (or a tiny epsilon at 0)
    -- so a real change still scores without dividing by zero.
    local sd = math.max(math.sqrt(var), math.abs(mean) * 0.01, 1e-9)
    local x = v
    if n < minSamples then
      learning = learning + 1
    else
      local score = (v - mean) / sd
      local deviation = score
      if s.direction == 'd' then deviation = -score elseif s.direction == 'b' then deviation = math.abs(score) end
      -- Outliers enter the baseline clipped to the band whichever direction counts for alerting.
      local band = s.threshold * sd
      x = math.max(mean - band, math.min(mean + band, v))
      if deviation >= s.threshold then
        local severity = (math.abs(score) >= 2 * s.threshold) and 2 or 1
        local suppressed = (severity <= tonumber(ss)) and 1 or 0
        local member = (suppressed == 1 and 's|' or 'u|') ..
          cjson.encode({ m = s.metric, v = v, e = mean, z = score, sev = severity, t = t, n = n })
        redis.call('ZADD', KEYS[1], t, member)
        anomalous = true
        local r = #reply
        reply[r + 1] = position
        reply[r + 2] = tostring(score)
        reply[r + 3] = tostring(mean)
        reply[r + 4] = severity
        reply[r + 5] = suppressed
        reply[r + 6] = t
      end
    end
    n = n + 1
    local alpha = math.max(1 / n, alphaFloor)
    local diff = x - mean
    local step = alpha * diff
    mean = mean + step
    var = (1 - alpha) * (var + diff * step)
    if now - ttlAt >= TTL_REFRESH_MS then
      redis.call('HSET', key, 'n', n, 'mean', tostring(mean), 'var', tostring(var), 'lastTs', t, 'at', now, 'ttlAt', now)
      redis.call('PEXPIRE', key, ttl)
      redis.call('SADD', KEYS[2], s.metric)
      redis.call('PEXPIRE', KEYS[2], ttl)
    else
      redis.call('HSET', key, 'n', n, 'mean', tostring(mean), 'var', tostring(var), 'lastTs', t, 'at', now)
    end
  end
end

reply[2] = learning
reply[3] = stale
if anomalous then
  -- Bounded work in an anomaly storm: the window keeps its newest 10,000 members, so counting the trigger
  -- window never walks more than that.
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowMs)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -10001)
  redis.call('PEXPIRE', KEYS[1], windowMs)
  local recent = 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now - triggerWindowMs, '+inf')) do
    if string.sub(member, 1, 2) == 'u|' then recent = recent + 1 end
  end
  reply[1] = recent
end
return reply
