--[[
Scores a batch of samples of one service against their baselines, then learns from them, atomically.

KEYS[1]        recent_anomalies:{serviceId}   sorted set, score = sample time (ms)
KEYS[2]        baseline_index:{serviceId}     set of the service's metric names
KEYS[3..]      baseline:{serviceId}:<metric>  hash n, mean, var, lastTs, at
ARGV[1]        JSON: { minSamples, alpha, windowMs, triggerWindowMs, baselineTtlMs, samples = [
                 { k = key index (3..), m = metric, v = value, t = time ms or -1 for "now",
                   z = z threshold, d = "up"|"down"|"both", s = suppressed up to (0 none, 1 warning, 2 critical) } ] }

Each sample is scored before it is added. Values beyond the threshold band enter the baseline clipped to
it, so one spike barely moves it while a lasting shift is learned in a bounded number of samples.
A sample older than the series' last one is kept for the record but does not move the baseline.
Returns JSON: { r = [ { st = "learning"|"scored"|"stale", z, e = expected, sev = 0|1|2, sup = 0|1, t } ],
                recent = unsuppressed anomalies of the service within triggerWindowMs }
]]
local input = cjson.decode(ARGV[1])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local results = {}
local anomalous = false

for i, s in ipairs(input.samples) do
  local key = KEYS[s.k]
  local t = s.t
  if t < 0 then t = now end
  local h = redis.call('HMGET', key, 'n', 'mean', 'var', 'lastTs')
  local n = tonumber(h[1]) or 0
  local mean = tonumber(h[2]) or 0
  local var = tonumber(h[3]) or 0
  local lastTs = tonumber(h[4])
  local r = { st = 'learning', z = cjson.null, e = cjson.null, sev = 0, sup = 0, t = t }

  if lastTs and t < lastTs then
    r.st = 'stale'
  else
    -- A flat series has no variance: measure deviations against 1% of its level (or a tiny epsilon at 0)
    -- so a real change still scores without dividing by zero.
    local sd = math.max(math.sqrt(var), math.abs(mean) * 0.01, 1e-9)
    local x = s.v
    if n >= input.minSamples then
      local z = (s.v - mean) / sd
      r.st = 'scored'
      r.z = z
      r.e = mean
      local deviation = z
      if s.d == 'down' then deviation = -z elseif s.d == 'both' then deviation = math.abs(z) end
      -- Outliers enter the baseline clipped to the band whichever direction counts for alerting.
      local band = s.z * sd
      x = math.max(mean - band, math.min(mean + band, s.v))
      if deviation >= s.z then
        r.sev = (math.abs(z) >= 2 * s.z) and 2 or 1
        if r.sev <= s.s then r.sup = 1 end
        local member = (r.sup == 1 and 's|' or 'u|') .. cjson.encode({ m = s.m, v = s.v, e = mean, z = z, sev = r.sev, t = t, n = n })
        redis.call('ZADD', KEYS[1], t, member)
        anomalous = true
      end
    end
    n = n + 1
    local alpha = math.max(1 / n, input.alpha)
    local diff = x - mean
    local step = alpha * diff
    mean = mean + step
    var = (1 - alpha) * (var + diff * step)
    redis.call('HSET', key, 'n', n, 'mean', tostring(mean), 'var', tostring(var), 'lastTs', t, 'at', now)
    redis.call('PEXPIRE', key, input.baselineTtlMs)
    redis.call('SADD', KEYS[2], s.m)
  end
  results[i] = r
end

redis.call('PEXPIRE', KEYS[2], input.baselineTtlMs)
local recent = 0
if anomalous then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - input.windowMs)
  redis.call('PEXPIRE', KEYS[1], input.windowMs)
  local members = redis.call('ZRANGEBYSCORE', KEYS[1], now - input.triggerWindowMs, '+inf')
  for _, member in ipairs(members) do
    if string.sub(member, 1, 2) == 'u|' then recent = recent + 1 end
  end
end
return cjson.encode({ r = results, recent = recent })
