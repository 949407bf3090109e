--[[
Scores a batch of samples of one service against their baselines, then learns from them, atomically.

KEYS[1]    recent_anomalies:{serviceId}   sorted set, score = sample time (ms): episode starts and escalations
KEYS[2]    series:{serviceId}             hash: series id → its descriptor (JSON: metric, labels, kind)
KEYS[3]    paging:{serviceId}             sorted set, score = time: unsuppressed marks of confirmed episodes
KEYS[4..]  model:{serviceId}:<series id>  string: the series' model, packed (layout below and in detector.ts)
KEYS[..]   history:{serviceId}:<series id>  optional, one per model key in the same order after them: the
           series' recent values, one slot per past minute (HISTORY_* below and series-history.ts); a backtest
           sends none
ARGV[1]    "<minSamples> <minSpanMs> <windowMs> <triggerWindowMs> <baselineTtlMs> <now ms> <episodeCalm> <confirmMs>"
ARGV[2]    per model key, in KEYS order: "<series id> <metric> <z threshold> <direction u|d|b>
           <seasonality a|n|d|w> <kind g|c|t> <descriptor: ARGV index, 0 = not sent>;" …
ARGV[3]    per sample: "<key index> <value> <time ms | -1 = arrival> <suppressed up to 0|1|2>;" …
ARGV[4..]  series descriptors, written to KEYS[2] when their model is created or its TTL refreshed

Kinds: g a gauge, scored on its value; c a counter, scored on its per-second rate (a value below the last
one is a reset: the increase is the new value); t a time-like gauge, learned but never anomalous.

The model of one series (one set of constants for every series):
- level: a fast exponentially weighted level with a damped trend (Holt), so steady growth is expected;
  values enter it clipped to CLIP scales, so a spike barely moves it; a run of SHIFT_RUN anomalies on
  one side is a level shift, adopted at once.
- season: 48 half-hour buckets of the day (UTC) for weekdays and 48 for weekends (copied from the other
  half when one is first seen), learned around a slow (1-day) level. The series is scored against the
  seasonal prediction once a full day has been seen and the season explains the series (its residual
  scale is below SEASON_GAIN of the plain one), or always/never when the service says so.
- spread: the larger of the mean absolute residual (× 1.2533, σ for Gaussian noise) and the residuals'
  99th percentile / 2.576 (tracked online, faster while the series is young; residuals beyond 16 spreads
  of a learned shape do not count), so a heavy-tailed series' usual spikes are not anomalies;
  floored at 0.2% of the level, at the smallest step the series has moved by, and at 1 while the series
  has only ever been integer-valued (quantised series).
- an anomalous sample teaches neither the shape nor the mean absolute residual (the level still learns it,
  clipped, and the tail tracker sees it).
- warm-up: no score before minSamples samples and minSpanMs of time; z is shrunk by sqrt(n / (n + 30))
  while the baseline is young.
- episodes: consecutive anomalous samples form one episode, reported when it starts (kind 1), when its
  severity first rises to critical (kind 2), and when it ends (kind 3: after episodeCalm samples below
  half the threshold; z is the episode's peak, time its last anomalous sample).
- severity: warning from the threshold, critical from twice the threshold. A young series (fewer than
  MATURE samples) that holds its value most of the time (it changed on fewer than STEPPY of its recent
  samples: a setting, a limit, a memory reservation, a series that never moved) moves in steps of a size
  it has not shown yet: its marks page as warnings whatever their size (they open an incident with others:
  openAfterWarnings).
- confirmation: an episode pages (opens, escalates or keeps open an incident) once confirmed (kind 4 when
  that is not also an escalation): when a run of consecutive anomalous samples has lasted confirmMs (at
  once when confirmMs is 0, like a Prometheus rule's `for:`) or become a level shift, or at its start
  when its series had MATURE samples of history. A single extreme value is only as rare as the history
  that shows it to be: after n samples of a series whose tails are unknown, a value beyond all of them has
  a chance of about 1/(n+1), so one sample alone pages only past 1,000 samples (< 0.1%); a deviation that
  lasts is evidence at any age. Unconfirmed episodes are still reported and listed.

Each sample is scored before it is learned. A sample older than the series' last one is kept for the record
but not learned; a sample without a timestamp, or with one ahead of `now`, counts as arriving now.
Each series is read once and written once per call.

Reply: { recent, learning, stale, continuing, undescribed, then 9 fields per reported episode mark: sample position
(1-based), z, expected (strings), severity (1 warning, 2 critical), suppressed (0 | 1), time, kind, value
scored (a string: a counter's rate), pages (0: the episode is not confirmed; 1: it pages as a warning, the
series moving in steps; 2: it pages at its severity) }. undescribed = new models whose descriptor was not sent and is not
known (the caller sends their descriptors next time).
recent = unsuppressed marks of confirmed episodes of the service within triggerWindowMs (0 unless this
batch made one); continuing = unsuppressed anomalous samples of confirmed episodes already reported.
]]
local settings = {}
for word in string.gmatch(ARGV[1], '[^ ]+') do
  settings[#settings + 1] = tonumber(word) or error('score-samples: setting is not a number: ' .. word)
end
if #settings ~= 8 then error('score-samples: expected 8 settings, got ' .. #settings) end
local minSamples, minSpan, windowMs, triggerWindowMs, ttl, now, calmNeeded, confirmMs = unpack(settings)

local TTL_REFRESH_MS = 3600000
local DAY = 86400000
local BUCKETS = 48
local BUCKET_MS = DAY / BUCKETS
local ALPHA, BETA, GAMMA, SCALE_ALPHA = 0.05, 0.02, 0.1, 0.02
local CLIP, REL_FLOOR, SHIFT_RUN, SEASON_GAIN, WARM_K, HYSTERESIS = 4, 0.002, 12, 0.8, 30, 0.5
local MATURE, STEPPY = 1000, 0.1
local TAIL_P, TAIL_STEP, TAIL_YOUNG, TAIL_Z, TAIL_CLIP_SEASON = 0.99, 0.05, 10, 2.5758, 16
-- The packed model: SCALARS as little-endian doubles, then the profile as 2 × BUCKETS floats.
-- src/modules/detection/detector.ts reads the same layout (MODEL_SCALARS): change both together.
-- Scalars, in order: v (version), n, t0, last, at, ttlAt, m, b, d, sl, sp, ss, qp, qs, st, lv, h0, h1, ep, ec,
-- es, ez, eb, el, rn, rs, iv, cb, cv, k, rv, rt, ra, ef, ch (see load and save). cb/cv cache the profile bucket the series is in
-- (0 = none): consecutive samples of one half hour learn it in the scalars, and it goes back to the
-- profile only when the series moves on to another bucket. k is the kind (0 gauge, 1 counter, 2 time); rv
-- and rt are a counter's last raw value and its time; ra is when the current run of consecutive anomalous
-- samples began, ef is 1 once the episode going on is confirmed; ch is the recent share of samples whose
-- value changed; hm, hv, hl, hh, he, hb sum up the minute going on for the series' history (remember).
local SCALAR_COUNT = 41
local SCALAR_LAYOUT = '<' .. string.rep('d', SCALAR_COUNT)
local SCALAR_BYTES = 8 * SCALAR_COUNT
local MODEL_BYTES = SCALAR_BYTES + 4 * 2 * BUCKETS
local VERSION = 8
-- Version 7 had the same scalars without the minute's summary: such a model is carried over, not relearned.
local V7_SCALARS = 35
local V7_LAYOUT = '<' .. string.rep('d', V7_SCALARS)
local V7_BYTES = 8 * V7_SCALARS + 4 * 2 * BUCKETS
-- Fields that may be unset (st, h0, h1, eb, el, ttlAt: a step not seen yet, a half of the week not seen
-- yet…) hold UNSET: all their real values are positive.
local UNSET = -1
local PROFILE_LAYOUT = '<' .. string.rep('f', 2 * BUCKETS)
-- Rewriting more profile buckets than this in one call (a half of the week initialised) writes the whole model.
local MAX_RANGES = 8

local series = {}
local k = 4
local KIND_CODE = { g = 0, c = 1, t = 2 }
for id, metric, threshold, direction, seasonality, kind, desc in
  string.gmatch(ARGV[2], '([^ ;]+) ([^ ;]+) ([^ ;]+) ([udb]) ([andw]) ([gct]) (%d+);') do
  series[k] = { id = id, metric = metric, threshold = tonumber(threshold), direction = direction, seasonality = seasonality,
    kind = KIND_CODE[kind], desc = ARGV[tonumber(desc)] }
  k = k + 1
end
-- The history key of model key i is KEYS[i + modelCount], when the caller sent them.
local modelCount = k - 4
local withHistory = #KEYS >= 3 + 2 * modelCount

-- Recent values, for the console's charts. The minute going on is summed up in the model's scalars:
-- its minute (since the epoch), last, lowest and highest value scored, the expected value and the
-- half-width of the band a value must leave to be anomalous, at its last sample (UNSET while the series
-- learns). When the series moves on to a later minute, that summary goes to the history ring: HISTORY_SLOTS
-- minutes, slot = minute % HISTORY_SLOTS, the same fields as floats. So a call writes the ring at most
-- once per series and minute. src/modules/detection/series-history.ts reads both.
local HISTORY_SLOTS, HISTORY_SLOT_BYTES, MINUTE_MS = 60, 24, 60000
local HISTORY_LAYOUT = '<I4fffff'

-- Notes a scored value of series i at time t.
local function remember(s, i, t, v, expected, band)
  if not withHistory then return end
  local minute = math.floor(t / MINUTE_MS)
  if s.hm == minute then
    s.hv, s.hl, s.hh, s.he, s.hb = v, math.min(s.hl, v), math.max(s.hh, v), expected, band
  else
    -- (A minute an hour or more before this one would be out of the ring's hour at once: not written.)
    if s.hm and minute - s.hm < HISTORY_SLOTS then
      local key = KEYS[i + modelCount]
      local offset = (s.hm % HISTORY_SLOTS) * HISTORY_SLOT_BYTES
      local slot = struct.pack(HISTORY_LAYOUT, s.hm, s.hv, s.hl, s.hh, s.he, s.hb)
      if redis.call('STRLEN', key) == HISTORY_SLOTS * HISTORY_SLOT_BYTES then
        redis.call('SETRANGE', key, offset, slot)
        redis.call('PEXPIRE', key, HISTORY_SLOTS * MINUTE_MS)
      else
        -- Created at its full size at once (a string grown by SETRANGE takes twice the memory).
        local ring = string.rep('\0', offset) .. slot .. string.rep('\0', (HISTORY_SLOTS - 1) * HISTORY_SLOT_BYTES - offset)
        redis.call('SET', key, ring, 'PX', HISTORY_SLOTS * MINUTE_MS)
      end
    end
    s.hm, s.hv, s.hl, s.hh, s.he, s.hb = minute, v, v, v, expected, band
  end
end

-- A series' model: its scalars unpacked, its profile read bucket by bucket from the packed string (a sample
-- needs one bucket of 96) and written back as ranges; the rest of the string is never unpacked or copied.
local function unset(value) if value ~= UNSET then return value end end

-- Values are bounded by the caller (MAX_SAMPLE_MAGNITUDE) so that nothing here overflows. Should a model
-- still be non-finite (a sum of its fields is NaN or infinite when one of them is, or when they are past any
-- real series' scale), it is never stored (the series keeps what it had learned before the batch), and one
-- read so (stored by an older version) starts afresh.
local function sound(s)
  local sum = s.m + s.b + s.d + s.sl + s.sp + s.ss + s.qp + s.qs + s.lv + (s.st or 0) + (s.rv or 0) + (s.ez or 0) + s.rs + s.cv
  return sum == sum and sum ~= math.huge and sum ~= -math.huge
end

local function load(key, kind)
  local packed = redis.call('GET', key)
  local fresh = { n = 0, changed = {}, changes = 0, cb = 0, cv = 0, k = kind }
  local version = packed and #packed >= 8 and struct.unpack('<d', packed)
  local current = version == VERSION and #packed == MODEL_BYTES
  if not current and not (version == 7 and #packed == V7_BYTES) then
    -- A new series, or one learned by another model version: start afresh (models rebuild from samples).
    return fresh
  end
  local _, n, t0, last, at, ttlAt, m, b, d, sl, sp, ss, qp, qs, st, lv, h0, h1, ep, ec, es, ez, eb, el, rn, rs, iv, cb, cv,
    k, rv, rt, ra, ef, ch, hm, hv, hl, hh, he, hb = struct.unpack(current and SCALAR_LAYOUT or V7_LAYOUT, packed)
  if not current then hm, hv, hl, hh, he, hb = UNSET, 0, 0, 0, 0, 0 end
  -- A series now known to be of another kind (metadata arrived, or a client declared its type) starts afresh.
  if k ~= kind then
    fresh.packed, fresh.replaced = packed, true
    return fresh
  end
  -- One constructor, so the table is sized once.
  local s = { packed = packed, changed = {}, changes = 0, n = n, t0 = t0, last = last, at = at, ttlAt = unset(ttlAt),
    m = m, b = b, d = d, sl = sl, sp = sp, ss = ss, qp = qp, qs = qs, st = unset(st), lv = lv, h0 = unset(h0),
    h1 = unset(h1), ep = ep, ec = ec, es = es, ez = ez, eb = unset(eb), el = unset(el), rn = rn, rs = rs, iv = iv, cb = cb, cv = cv,
    k = k, rv = rv, rt = unset(rt), ra = unset(ra), ef = ef, ch = ch, hm = unset(hm), hv = hv, hl = hl, hh = hh, he = he, hb = hb,
    profileAt = current and SCALAR_BYTES or 8 * V7_SCALARS, migrated = not current }
  if not sound(s) then
    fresh.packed, fresh.replaced = packed, true
    return fresh
  end
  return s
end

local function bucketOf(s, i)
  if i == s.cb then return s.cv end
  local value = s.changed[i]
  if value then return value end
  if not s.packed or s.replaced then return 0 end
  return (struct.unpack('<f', s.packed, s.profileAt + 4 * (i - 1) + 1))
end

local function setBucket(s, i, value)
  if not s.changed[i] then s.changes = s.changes + 1 end
  s.changed[i] = value
end

local undescribed = 0
local function save(key, s, meta)
  -- A new model is indexed and gets its TTL at once, whatever `now` is (a backtest's clock may be near 0).
  local refresh = not s.packed or s.replaced or now - (s.ttlAt or 0) >= TTL_REFRESH_MS
  if refresh then s.ttlAt = now end
  -- (A counter with only its first value has no level yet: its fields are zeros until its first rate.)
  local scalars = struct.pack(SCALAR_LAYOUT, VERSION, s.n, s.t0 or 0, s.last or 0, now, s.ttlAt or UNSET, s.m or 0, s.b or 0,
    s.d or 0, s.sl or 0, s.sp or 0, s.ss or 0, s.qp or 0, s.qs or 0, s.st or UNSET, s.lv or 0, s.h0 or UNSET, s.h1 or UNSET,
    s.ep or 0, s.ec or 0, s.es or 0, s.ez or 0, s.eb or UNSET, s.el or UNSET, s.rn or 0, s.rs or 0, s.iv or 0, s.cb, s.cv,
    s.k, s.rv or 0, s.rt or UNSET, s.ra or UNSET, s.ef or 0, s.ch or 0, s.hm or UNSET, s.hv or 0, s.hl or 0, s.hh or 0, s.he or 0,
    s.hb or 0)
  if s.packed and not s.replaced and not s.migrated and s.changes <= MAX_RANGES then
    -- The usual case: the scalars and the one or two buckets learned are written in place.
    redis.call('SETRANGE', key, 0, scalars)
    for i, value in pairs(s.changed) do redis.call('SETRANGE', key, SCALAR_BYTES + 4 * (i - 1), struct.pack('<f', value)) end
  else
    local profile = {}
    for i = 1, 2 * BUCKETS do profile[i] = bucketOf(s, i) end
    -- The cached bucket is written with the rest.
    redis.call('SET', key, scalars .. struct.pack(PROFILE_LAYOUT, unpack(profile)), 'KEEPTTL')
  end
  if refresh then
    redis.call('PEXPIRE', key, ttl)
    if meta.desc then
      redis.call('HSET', KEYS[2], meta.id, meta.desc)
    elseif redis.call('HEXISTS', KEYS[2], meta.id) == 0 then
      undescribed = undescribed + 1
    end
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end

local function clip(v, limit) return math.max(-limit, math.min(limit, v)) end
-- z of a value far beyond a tiny spread overflows; it is reported as at most ±1e12 (cjson refuses infinity).
local Z_LIMIT = 1e12
-- The 99th percentile of |residual|, tracked with multiplicative steps (larger while the series is young,
-- so a heavy tail is learned within its first few hundred samples).
local function tail(q, e, n)
  local a = math.abs(e)
  if q == nil or q == 0 then return a end
  local step = math.max(TAIL_STEP, TAIL_YOUNG / n)
  if a > q then return q * (1 + step * TAIL_P) end
  return q * (1 - step * (1 - TAIL_P))
end

-- The value a series is scored on: a counter's per-second rate since its last value (a value below the last
-- one is a reset, and the increase is the value itself); any other series' value.
local function rateOf(s, v, t) return ((v >= s.rv) and (v - s.rv) or v) / ((t - s.rt) / 1000) end
local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end
local function scored(s, v, t)
  if s.k ~= 1 then return v end
  local rate = rateOf(s, v, t)
  s.rv, s.rt = v, t
  return rate
end

local state = {}
local reply = { 0, 0, 0, 0, 0 }
local learning, stale, continuing, position = 0, 0, 0, 0
local reported, paged = false, false

for ki, vs, ts, ss in string.gmatch(ARGV[3], '(%d+) ([^ ;]+) ([^ ;]+) (%d);') do
  position = position + 1
  local index = tonumber(ki)
  local meta = series[index]
  local s = state[index]
  if not s then
    s = load(KEYS[index], meta.kind)
    state[index] = s
  end
  local v = tonumber(vs)
  local t = tonumber(ts)
  -- No timestamp, or one ahead of the clock (an agent's fast clock; the API allows 5 minutes): the sample
  -- counts as arriving now, so it cannot make every correctly timed sample after it look stale.
  if t < 0 or t > now then t = math.max(now, s.last or 0, s.rt or 0) end

  if (s.last and t < s.last) or (s.rt and t <= s.rt) then
    stale = stale + 1
  elseif s.k == 1 and not s.rt then
    -- A counter's first value: its rate starts with the next one.
    s.rv, s.rt = v, t
    learning = learning + 1
  elseif s.k == 1 and not finite(rateOf(s, v, t)) then
    -- A rate the model cannot hold (huge values over a tiny interval): not learned, the raw value kept.
    s.rv, s.rt = v, t
    stale = stale + 1
  elseif s.n == 0 then
    v = scored(s, v, t)
    s.n, s.t0, s.last, s.lv = 1, t, t, v
    s.m, s.d, s.sl, s.b = v, v, v, 0
    s.sp, s.ss, s.qp, s.qs, s.ep, s.rn, s.rs = 0, 0, 0, 0, 0, 0, 0
    -- (A counter's rate is no count: no integer floor for it.)
    s.iv = (v == math.floor(v) and s.k ~= 1) and 1 or 0
    local dow = (math.floor(t / DAY) + 4) % 7
    if (dow == 0 or dow == 6) and meta.seasonality ~= 'd' then s.h1 = t else s.h0 = t end
    learning = learning + 1
    remember(s, index, t, v, v, UNSET)
  else
    v = scored(s, v, t)
    -- The day's bucket, in the weekday or the weekend half of the profile.
    local dow = (math.floor(t / DAY) + 4) % 7
    local half = ((dow == 0 or dow == 6) and meta.seasonality ~= 'd') and 1 or 0
    if (half == 1 and not s.h1) or (half == 0 and not s.h0) then
      -- First sample of this half: it starts from what the other half learned.
      local other = 1 - half
      for i = 1, BUCKETS do setBucket(s, half * BUCKETS + i, bucketOf(s, other * BUCKETS + i)) end
      if half == 1 then s.h1 = t else s.h0 = t end
    end
    local bucket = half * BUCKETS + math.floor((t % DAY) / BUCKET_MS) + 1
    if bucket ~= s.cb then
      -- Moving on to another bucket: the one learned so far goes back to the profile.
      if s.cb ~= 0 then setBucket(s, s.cb, s.cv) end
      local value = bucketOf(s, bucket)
      s.cb, s.cv = bucket, value
    end
    local season = s.cv
    local span = t - s.t0

    -- The smallest move the series has made; an integer-valued series moves by at least 1.
    local stepFloor = math.max(s.st or 0, s.iv == 1 and 1 or 0)
    local scaleP = math.max(s.sp * 1.2533, s.qp / TAIL_Z, math.abs(s.m) * REL_FLOOR, stepFloor, 1e-9)
    local scaleS = math.max(s.ss * 1.2533, s.qs / TAIL_Z, math.abs(s.d + season) * REL_FLOOR, stepFloor, 1e-9)
    local seasonal = false
    if meta.seasonality ~= 'n' and span >= DAY then
      seasonal = meta.seasonality ~= 'a' or scaleS < SEASON_GAIN * scaleP
    end
    local expected, scale
    local anomalous = false
    if seasonal then expected, scale = s.d + season, scaleS else expected, scale = s.m + s.b, scaleP end
    local e = v - expected

    if s.n < minSamples or span < minSpan then
      learning = learning + 1
      remember(s, index, t, v, expected, UNSET)
    else
      local shrink = math.sqrt(s.n / (s.n + WARM_K))
      remember(s, index, t, v, expected, meta.threshold * scale / shrink)
      local z = clip((e / scale) * shrink, Z_LIMIT)
      local deviation = z
      if meta.direction == 'd' then deviation = -z elseif meta.direction == 'b' then deviation = math.abs(z) end
      -- A time-like series is learned but never anomalous.
      if deviation >= meta.threshold and s.k ~= 2 then
        anomalous = true
        local severity = (math.abs(z) >= 2 * meta.threshold) and 2 or 1
        -- Consecutive anomalies on one side: a level shift once there are SHIFT_RUN of them.
        if s.rn > 0 and (s.rs > 0) == (e > 0) then s.rn, s.rs = s.rn + 1, s.rs + e else s.rn, s.rs = 1, e end
        s.ra = s.ra or t
        local sustained = t - s.ra >= confirmMs or s.rn >= SHIFT_RUN
        local kind, pages = 0, false
        if s.ep == 0 then
          s.ep, s.eb, s.es, s.ez = 1, t, severity, z
          s.ef = (s.n >= MATURE or sustained) and 1 or 0
          kind, pages = 1, s.ef == 1
        else
          local escalated = severity > s.es
          s.es = math.max(s.es, severity)
          if math.abs(z) > math.abs(s.ez) then s.ez = z end
          if s.ef ~= 1 and sustained then
            s.ef = 1
            kind, pages = escalated and 2 or 4, true
          elseif escalated then
            kind, pages = 2, s.ef == 1
          end
        end
        s.ec, s.el = 0, t
        -- A confirmation carries the episode's severity so far.
        local marked = (kind == 4) and s.es or severity
        local suppressed = (marked <= tonumber(ss)) and 1 or 0
        if kind == 1 or kind == 2 then
          local member = (suppressed == 1 and 's|' or 'u|') ..
            cjson.encode({ s = meta.id, m = meta.metric, v = v, e = expected, z = z, sev = severity, t = t, n = s.n, k = kind, c = pages and 1 or 0 })
          redis.call('ZADD', KEYS[1], t, member)
          reported = true
        end
        if kind > 0 then
          local r = #reply
          reply[r + 1] = position
          reply[r + 2] = tostring(z)
          reply[r + 3] = tostring(expected)
          reply[r + 4] = marked
          reply[r + 5] = suppressed
          reply[r + 6] = t
          reply[r + 7] = kind
          reply[r + 8] = tostring(v)
          reply[r + 9] = pages and (((s.ch or 0) < STEPPY and s.n < MATURE) and 1 or 2) or 0
        elseif suppressed == 0 and s.ef == 1 then
          continuing = continuing + 1
        end
        if pages and suppressed == 0 then
          redis.call('ZADD', KEYS[3], t, meta.id .. '|' .. s.eb .. '|' .. kind)
          paged = true
        end
      else
        s.rn, s.rs, s.ra = 0, 0, nil
        if s.ep == 1 then
          if math.abs(z) < meta.threshold * HYSTERESIS then s.ec = (s.ec or 0) + 1 end
          if s.ec >= calmNeeded then
            -- The episode is over: reported with its peak and its last anomalous time (not listed by ingestion).
            local confirmed = s.ef
            s.ep, s.ec, s.ef = 0, 0, 0
            local r = #reply
            reply[r + 1] = position
            reply[r + 2] = tostring(s.ez)
            reply[r + 3] = tostring(expected)
            reply[r + 4] = s.es
            reply[r + 5] = 0
            reply[r + 6] = s.el
            reply[r + 7] = 3
            reply[r + 8] = tostring(v)
            reply[r + 9] = confirmed
          end
        end
      end
    end

    -- Learn.
    local n = s.n + 1
    local alpha = math.max(1 / n, ALPHA)
    local slowAlpha = math.max(1 / n, 1 - math.exp(-(t - s.last) / DAY))
    if s.rn >= SHIFT_RUN then
      local shift = s.rs / s.rn
      s.m, s.d, s.sl = s.m + shift, s.d + shift, s.sl + shift
      s.rn, s.rs = 0, 0
    else
      local level = s.m + s.b + alpha * clip(v - s.m - s.b, CLIP * scaleP)
      s.b = BETA * (level - s.m) + (1 - BETA) * s.b
      s.m = level
      s.d = s.d + alpha * clip(v - season - s.d, CLIP * scaleS)
      s.sl = s.sl + slowAlpha * clip(v - season - s.sl, CLIP * scaleS)
    end
    local ePlain, eSeason = v - s.m, v - (s.d + season)
    -- An anomalous sample teaches neither the daily shape nor the usual spread (a dropout must not become
    -- part of the day, nor widen the band that the next anomaly is measured against); the tail tracker
    -- still sees it, so a heavy tail is learned.
    if not anomalous then
      s.cv = season + GAMMA * ((v - s.sl) - season)
      local scaleAlpha = math.max(1 / n, SCALE_ALPHA)
      s.sp = s.sp + scaleAlpha * (math.min(math.abs(ePlain), CLIP * scaleP) - s.sp)
      s.ss = s.ss + scaleAlpha * (math.min(math.abs(eSeason), CLIP * scaleS) - s.ss)
    end
    s.qp = tail(s.qp, ePlain, n)
    -- Against a learned shape, a residual of more than TAIL_CLIP_SEASON spreads (a dropout, a broken day)
    -- is an event, not part of the series' tail: it would blunt detection for days.
    if math.abs(eSeason) <= TAIL_CLIP_SEASON * scaleS then s.qs = tail(s.qs, eSeason, n) end
    if v ~= math.floor(v) then s.iv = 0 end
    s.ch = (s.ch or 0) + alpha * ((v ~= s.lv and 1 or 0) - (s.ch or 0))
    if v ~= s.lv then
      local moved = math.abs(v - s.lv)
      if not s.st or moved < s.st then s.st = moved end
    end
    s.n, s.last, s.lv = n, t, v
  end
end

for index, s in pairs(state) do
  -- (A counter's first value alone is kept too: its rate starts from it.)
  if (s.n > 0 and sound(s)) or (s.n == 0 and s.rt) then save(KEYS[index], s, series[index]) end
end

reply[2] = learning
reply[3] = stale
reply[4] = continuing
reply[5] = undescribed
if reported then
  -- Bounded work in an anomaly storm: the window keeps its newest 10,000 members.
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowMs)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -10001)
  redis.call('PEXPIRE', KEYS[1], windowMs)
end
if paged then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - windowMs)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -10001)
  redis.call('PEXPIRE', KEYS[3], windowMs)
  reply[1] = redis.call('ZCOUNT', KEYS[3], now - triggerWindowMs, '+inf')
end
return reply
