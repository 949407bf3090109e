--[[
Scores a batch of samples of one service against their baselines, then learns from them, atomically.

KEYS[1]    recent_anomalies:{serviceId}   sorted set, score = sample time (ms): episode starts and escalations
KEYS[2]    series:{serviceId}             hash: series id → its descriptor (JSON: metric, labels, kind)
KEYS[3]    paging:{serviceId}             sorted set, score = time: unsuppressed marks of confirmed episodes
KEYS[4..]  model:{serviceId}:<series id>  string: the series' model, packed (layout below and in detector.ts)
KEYS[..]   history:{serviceId}:<series id>  optional, one per model key in the same order after them: the
           series' recent values, one slot per past minute (HISTORY_* below and series-history.ts); a backtest
           sends none
ARGV[1]    the arguments (src/modules/detection/detector.ts writes them): 'b', then packed (struct, little-endian):
           - the settings (SETTINGS_LAYOUT): minSamples, minSpanMs, windowMs, triggerWindowMs, baselineTtlMs,
             now (ms), episodeCalm, confirmMs, then the byte length of the series part (uint32);
           - per model key, in KEYS order (SERIES_LAYOUT): z threshold, direction (u|d|b), seasonality
             (a|n|d|w), kind (0 gauge, 1 counter, 2 time), descriptor (ARGV index, 0 = not sent), series id,
             metric (each a length, then the bytes);
           - per sample (SAMPLE_LAYOUT): key index, value, time (ms; -1 = arrival), suppressed up to (0|1|2).
           A call of one sample sends 't' and the same fields as text instead, separated by spaces (its one
           key index, 4, left out).
ARGV[2..]  series descriptors, written to KEYS[2] when their model is created or its TTL refreshed

Kinds: 0 a gauge, scored on its value; 1 a counter, scored on its per-second rate (a value below the last
one is a reset: the increase is the new value); 2 a time-like gauge, learned but never anomalous.

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
Each series is read once and written once per call: its samples are taken together (in batch order), with
its model in local variables, so the marks in the reply are grouped by series (their positions give the batch
order).

Reply: { recent, learning, stale, continuing, undescribed, then 9 fields per reported episode mark: sample position
(1-based), z, expected (strings), severity (1 warning, 2 critical), suppressed (0 | 1), time, kind, value
scored (a string: a counter's rate), pages (0: the episode is not confirmed; 1: it pages as a warning, the
series moving in steps; 2: it pages at its severity) }. undescribed = new models whose descriptor was not sent and is not
known (the caller sends their descriptors next time).
recent = unsuppressed marks of confirmed episodes of the service within triggerWindowMs (0 unless this
batch made one); continuing = unsuppressed anomalous samples of confirmed episodes already reported.
]]
local SETTINGS_LAYOUT, SERIES_LAYOUT, SAMPLE_LAYOUT = '<ddddddddI4', '<dc1c1BHHc0Hc0', '<HddB'
local minSamples, minSpan, windowMs, triggerWindowMs, ttl, now, calmNeeded, confirmMs
-- The samples, grouped by series: each series' samples are chained in batch order (firstOf, nextOf). The
-- caller numbers series in the order they first appear, so order lists KEYS[4], KEYS[5]…, and nextSeries
-- gives their settings and names in that order (threshold, direction, seasonality, kind, descriptor, id, metric).
local values, times, ceilings, nextOf, firstOf, order = {}, {}, {}, {}, {}, {}
local nextSeries
do
  local arguments = ARGV[1]
  if string.sub(arguments, 1, 1) == 'b' then
    -- Packed: numbers are read as they are, with no text to parse.
    local seriesBytes, seriesAt
    minSamples, minSpan, windowMs, triggerWindowMs, ttl, now, calmNeeded, confirmMs, seriesBytes, seriesAt =
      struct.unpack(SETTINGS_LAYOUT, arguments, 2)
    nextSeries = function()
      local threshold, direction, seasonality, kind, desc, id, metric
      threshold, direction, seasonality, kind, desc, id, metric, seriesAt = struct.unpack(SERIES_LAYOUT, arguments, seriesAt)
      return threshold, direction, seasonality, kind, desc, id, metric
    end
    local at, lastOf, count = seriesAt + seriesBytes, {}, 0
    while at <= #arguments do
      local index
      count = count + 1
      index, values[count], times[count], ceilings[count], at = struct.unpack(SAMPLE_LAYOUT, arguments, at)
      local previous = lastOf[index]
      if previous then
        nextOf[previous] = count
      elseif index == #order + 4 then
        firstOf[index], order[#order + 1] = count, index
      else
        error('score-samples: series ' .. index .. ' appears before series ' .. (#order + 4))
      end
      lastOf[index] = count
    end
  else
    -- One sample, as text.
    local f = {}
    for word in string.gmatch(arguments, '[^ ]+') do f[#f + 1] = word end
    if f[1] ~= 't' or #f ~= 19 then error('score-samples: expected packed arguments or one sample as text') end
    minSamples, minSpan, windowMs, triggerWindowMs = tonumber(f[2]), tonumber(f[3]), tonumber(f[4]), tonumber(f[5])
    ttl, now, calmNeeded, confirmMs = tonumber(f[6]), tonumber(f[7]), tonumber(f[8]), tonumber(f[9])
    nextSeries = function() return tonumber(f[10]), f[11], f[12], tonumber(f[13]), tonumber(f[14]), f[15], f[16] end
    values[1], times[1], ceilings[1], firstOf[4], order[1] = tonumber(f[17]), tonumber(f[18]), tonumber(f[19]), 1, 4
  end
end

-- Library functions as locals: a global is a table lookup on every use.
local abs, floor, min, max, sqrt, exp, huge = math.abs, math.floor, math.min, math.max, math.sqrt, math.exp, math.huge
local pack, unpackString, call = struct.pack, struct.unpack, redis.call

local TTL_REFRESH_MS = 3600000
local DAY = 86400000
local BUCKETS = 48
local BUCKET_MS = DAY / BUCKETS
local ALPHA, BETA, GAMMA, SCALE_ALPHA = 0.05, 0.02, 0.1, 0.02
local CLIP, REL_FLOOR, SHIFT_RUN, SEASON_GAIN, WARM_K, HYSTERESIS = 4, 0.002, 12, 0.8, 30, 0.5
local MATURE, STEPPY = 1000, 0.1
local TAIL_Z, TAIL_CLIP_SEASON = 2.5758, 16
-- The packed model: SCALARS as little-endian doubles, then the profile as 2 × BUCKETS floats.
-- src/modules/detection/detector.ts reads the same layout (MODEL_SCALARS): change both together.
-- Scalars, in order: v (version), n, t0, last, at, ttlAt, m, b, d, sl, sp, ss, qp, qs, st, lv, h0, h1, ep, ec,
-- es, ez, eb, el, rn, rs, iv, cb, cv, k, rv, rt, ra, ef, ch, hm, hv, hl, hh, he, hb (the locals of the same
-- names below). cb/cv cache the profile bucket the series is in (0 = none): consecutive samples of one half
-- hour learn it in the scalars, and it goes back to the profile only when the series moves on to another
-- bucket. k is the kind (0 gauge, 1 counter, 2 time); rv and rt are a counter's last raw value and its time;
-- ra is when the current run of consecutive anomalous samples began, ef is 1 once the episode going on is
-- confirmed; ch is the recent share of samples whose value changed; hm, hv, hl, hh, he, hb sum up the minute
-- going on for the series' history (see HISTORY_SLOTS).
local SCALAR_LAYOUT = '<' .. string.rep('d', 41)
local SCALAR_BYTES = 8 * 41
local MODEL_BYTES = SCALAR_BYTES + 4 * 2 * BUCKETS
local VERSION = 8
-- Version 7 had the same scalars without the minute's summary: such a model is carried over, not relearned.
local V7_LAYOUT = '<' .. string.rep('d', 35)
local V7_PROFILE_AT = 8 * 35
local V7_BYTES = V7_PROFILE_AT + 4 * 2 * BUCKETS
-- Fields that may be unset (st, h0, h1, eb, el, ttlAt: a step not seen yet, a half of the week not seen
-- yet…) hold UNSET: all their real values are positive.
local UNSET = -1
local PROFILE_LAYOUT = '<' .. string.rep('f', 2 * BUCKETS)
-- Rewriting more profile buckets than this in one call (a half of the week initialised) writes the whole model.
local MAX_RANGES = 8

local modelCount = #order
-- The history key of model key i is KEYS[i + modelCount], when the caller sent them.
local withHistory = #KEYS >= 3 + 2 * modelCount

-- Recent values, for the console's charts. The minute going on is summed up in the model's scalars:
-- its minute (since the epoch), last, lowest and highest value scored, the expected value and the
-- half-width of the band a value must leave to be anomalous, at its last sample (UNSET while the series
-- learns). When the series moves on to a later minute, that summary goes to the history ring: HISTORY_SLOTS
-- minutes, slot = minute % HISTORY_SLOTS, the same fields as floats. So a call writes the ring at most
-- once per series and minute. src/modules/detection/series-history.ts reads both.
local HISTORY_SLOTS, HISTORY_SLOT_BYTES, MINUTE_MS = 60, 24, 60000
local HISTORY_LAYOUT = '<I4fffff'

-- Writes the summary of minute hm of series i to its ring (the series has moved on to a later minute).
local function keepMinute(i, minute, hm, hv, hl, hh, he, hb)
  -- (A minute an hour or more before this one would be out of the ring's hour at once: not written.)
  if not hm or minute - hm >= HISTORY_SLOTS then return end
  local key = KEYS[i + modelCount]
  local offset = (hm % HISTORY_SLOTS) * HISTORY_SLOT_BYTES
  local slot = pack(HISTORY_LAYOUT, hm, hv, hl, hh, he, hb)
  if call('STRLEN', key) == HISTORY_SLOTS * HISTORY_SLOT_BYTES then
    call('SETRANGE', key, offset, slot)
    call('PEXPIRE', key, HISTORY_SLOTS * MINUTE_MS)
  else
    -- Created at its full size at once (a string grown by SETRANGE takes twice the memory).
    local ring = string.rep('\0', offset) .. slot .. string.rep('\0', (HISTORY_SLOTS - 1) * HISTORY_SLOT_BYTES - offset)
    call('SET', key, ring, 'PX', HISTORY_SLOTS * MINUTE_MS)
  end
end

local function unset(value) if value ~= UNSET then return value end end
local function finite(x) return x == x and x ~= huge and x ~= -huge end
-- Values are bounded by the caller (MAX_SAMPLE_MAGNITUDE) so that nothing here overflows. Should a model
-- still be non-finite (a sum of its fields is NaN or infinite when one of them is, or when they are past any
-- real series' scale), it is never stored (the series keeps what it had learned before the batch), and one
-- read so (stored by an older version) starts afresh.
local function sound(m, b, d, sl, sp, ss, qp, qs, lv, st, rv, ez, rs, cv)
  return finite(m + b + d + sl + sp + ss + qp + qs + lv + (st or 0) + (rv or 0) + (ez or 0) + rs + cv)
end

-- A series' profile is read bucket by bucket from the packed model (a sample needs one bucket of 96) and
-- written back as ranges; the rest of the string is never unpacked or copied. Bucket i: the one the series
-- is in (cb, its value cv), one changed in this call, or the stored one (0 for a new model).
local function bucketOf(i, cb, cv, changed, packed, profileAt)
  if i == cb then return cv end
  local value = changed and changed[i]
  if value then return value end
  if not packed then return 0 end
  return (unpackString('<f', packed, profileAt + 4 * (i - 1) + 1))
end
local function setBucket(changed, changes, i, value)
  changed = changed or {}
  if not changed[i] then changes = changes + 1 end
  changed[i] = value
  return changed, changes
end

local function clip(v, limit) return max(-limit, min(limit, v)) end
-- z of a value far beyond a tiny spread overflows; it is reported as at most ±1e12 (cjson refuses infinity).
local Z_LIMIT = 1e12
-- The 99th percentile of |residual|, tracked with multiplicative steps (larger while the series is young,
-- so a heavy tail is learned within its first few hundred samples).
local function tail(q, e, n)
  local TAIL_P, TAIL_STEP, TAIL_YOUNG = 0.99, 0.05, 10
  local a = abs(e)
  if q == nil or q == 0 then return a end
  local step = max(TAIL_STEP, TAIL_YOUNG / n)
  if a > q then return q * (1 + step * TAIL_P) end
  return q * (1 - step * (1 - TAIL_P))
end

-- A counter is scored on its per-second rate since its last value rv at rt (a value below the last one is a
-- reset, and the increase is the value itself).
local function rateOf(rv, rt, v, t) return ((v >= rv) and (v - rv) or v) / ((t - rt) / 1000) end

local reply = { 0, 0, 0, 0, 0 }
local learning, stale, continuing, undescribed = 0, 0, 0, 0
local reported, paged = false, false

for _, index in ipairs(order) do
  local key = KEYS[index]
  local threshold, direction, seasonality, kind, desc, id, metric = nextSeries()

  -- Load: the model's scalars into locals. A new series, one learned by another model version, one now known
  -- to be of another kind (metadata arrived, or a client declared its type) or one not sound starts afresh
  -- (models rebuild from samples): packed is then nil.
  local packed = call('GET', key)
  local version = packed and #packed >= 8 and unpackString('<d', packed)
  local current = version == VERSION and #packed == MODEL_BYTES
  local _, at, n, t0, last, ttlAt, m, b, d, sl, sp, ss, qp, qs, st, lv, h0, h1, ep, ec, es, ez, eb, el, rn, rs, iv, cb, cv,
    k, rv, rt, ra, ef, ch, hm, hv, hl, hh, he, hb
  local profileAt, migrated = SCALAR_BYTES, false
  if current or (version == 7 and #packed == V7_BYTES) then
    _, n, t0, last, at, ttlAt, m, b, d, sl, sp, ss, qp, qs, st, lv, h0, h1, ep, ec, es, ez, eb, el, rn, rs, iv, cb, cv,
      k, rv, rt, ra, ef, ch, hm, hv, hl, hh, he, hb = unpackString(current and SCALAR_LAYOUT or V7_LAYOUT, packed)
    if not current then hm, hv, hl, hh, he, hb, profileAt, migrated = UNSET, 0, 0, 0, 0, 0, V7_PROFILE_AT, true end
    ttlAt, st, h0, h1, eb, el, rt, ra, hm = unset(ttlAt), unset(st), unset(h0), unset(h1), unset(eb), unset(el), unset(rt),
      unset(ra), unset(hm)
    if k ~= kind or not sound(m, b, d, sl, sp, ss, qp, qs, lv, st, rv, ez, rs, cv) then packed = nil end
  else
    packed = nil
  end
  if not packed then
    -- (Every field not listed is nil: unset, or set by the series' first sample.)
    n, t0, last, ttlAt, m, b, d, sl, sp, ss, qp, qs, st, lv, h0, h1, ep, ec, es, ez, eb, el, rn, rs, iv, rv, rt, ra, ef, ch,
      hm, hv, hl, hh, he, hb = 0
    cb, cv, k, migrated = 0, 0, kind, false
  end
  -- Profile buckets changed in this call (index → value), and how many.
  local changed, changes = nil, 0

  local position = firstOf[index]
  while position do
    local v, t = values[position], times[position]
    -- No timestamp, or one ahead of the clock (an agent's fast clock; the API allows 5 minutes): the sample
    -- counts as arriving now, so it cannot make every correctly timed sample after it look stale.
    if t < 0 or t > now then t = max(now, last or 0, rt or 0) end
    -- What the series' history notes of this sample (band nil: nothing).
    local expected, band

    if (last and t < last) or (rt and t <= rt) then
      stale = stale + 1
    elseif k == 1 and not rt then
      -- A counter's first value: its rate starts with the next one.
      rv, rt = v, t
      learning = learning + 1
    elseif k == 1 and not finite(rateOf(rv, rt, v, t)) then
      -- A rate the model cannot hold (huge values over a tiny interval): not learned, the raw value kept.
      rv, rt = v, t
      stale = stale + 1
    else
      -- The value scored: a counter's rate, any other series' value.
      if k == 1 then v, rv, rt = rateOf(rv, rt, v, t), v, t end
      if n == 0 then
        n, t0, last, lv = 1, t, t, v
        m, d, sl, b = v, v, v, 0
        sp, ss, qp, qs, ep, rn, rs = 0, 0, 0, 0, 0, 0, 0
        -- (A counter's rate is no count: no integer floor for it.)
        iv = (v == floor(v) and k ~= 1) and 1 or 0
        local dow = (floor(t / DAY) + 4) % 7
        if (dow == 0 or dow == 6) and seasonality ~= 'd' then h1 = t else h0 = t end
        learning = learning + 1
        expected, band = v, UNSET
      else
        -- The day's bucket, in the weekday or the weekend half of the profile.
        local dow = (floor(t / DAY) + 4) % 7
        local half = ((dow == 0 or dow == 6) and seasonality ~= 'd') and 1 or 0
        if (half == 1 and not h1) or (half == 0 and not h0) then
          -- First sample of this half: it starts from what the other half learned.
          local other = 1 - half
          for i = 1, BUCKETS do
            changed, changes = setBucket(changed, changes, half * BUCKETS + i, bucketOf(other * BUCKETS + i, cb, cv, changed, packed, profileAt))
          end
          if half == 1 then h1 = t else h0 = t end
        end
        local bucket = half * BUCKETS + floor((t % DAY) / BUCKET_MS) + 1
        if bucket ~= cb then
          -- Moving on to another bucket: the one learned so far goes back to the profile.
          if cb ~= 0 then changed, changes = setBucket(changed, changes, cb, cv) end
          cb, cv = bucket, bucketOf(bucket, cb, cv, changed, packed, profileAt)
        end
        local season = cv
        local span = t - t0

        -- The smallest move the series has made; an integer-valued series moves by at least 1.
        local stepFloor = max(st or 0, iv == 1 and 1 or 0)
        local scaleP = max(sp * 1.2533, qp / TAIL_Z, abs(m) * REL_FLOOR, stepFloor, 1e-9)
        local scaleS = max(ss * 1.2533, qs / TAIL_Z, abs(d + season) * REL_FLOOR, stepFloor, 1e-9)
        local seasonal = false
        if seasonality ~= 'n' and span >= DAY then
          seasonal = seasonality ~= 'a' or scaleS < SEASON_GAIN * scaleP
        end
        local scale
        local anomalous = false
        if seasonal then expected, scale = d + season, scaleS else expected, scale = m + b, scaleP end
        local e = v - expected

        if n < minSamples or span < minSpan then
          learning = learning + 1
          band = UNSET
        else
          local shrink = sqrt(n / (n + WARM_K))
          band = threshold * scale / shrink
          local z = clip((e / scale) * shrink, Z_LIMIT)
          local deviation = z
          if direction == 'd' then deviation = -z elseif direction == 'b' then deviation = abs(z) end
          -- A time-like series is learned but never anomalous.
          if deviation >= threshold and k ~= 2 then
            anomalous = true
            local severity = (abs(z) >= 2 * threshold) and 2 or 1
            -- Consecutive anomalies on one side: a level shift once there are SHIFT_RUN of them.
            if rn > 0 and (rs > 0) == (e > 0) then rn, rs = rn + 1, rs + e else rn, rs = 1, e end
            ra = ra or t
            local sustained = t - ra >= confirmMs or rn >= SHIFT_RUN
            local mark, pages = 0, false
            if ep == 0 then
              ep, eb, es, ez = 1, t, severity, z
              ef = (n >= MATURE or sustained) and 1 or 0
              mark, pages = 1, ef == 1
            else
              local escalated = severity > es
              es = max(es, severity)
              if abs(z) > abs(ez) then ez = z end
              if ef ~= 1 and sustained then
                ef = 1
                mark, pages = escalated and 2 or 4, true
              elseif escalated then
                mark, pages = 2, ef == 1
              end
            end
            ec, el = 0, t
            -- A confirmation carries the episode's severity so far.
            local marked = (mark == 4) and es or severity
            local suppressed = (marked <= ceilings[position]) and 1 or 0
            if mark == 1 or mark == 2 then
              local member = (suppressed == 1 and 's|' or 'u|') ..
                cjson.encode({ s = id, m = metric, v = v, e = expected, z = z, sev = severity, t = t, n = n, k = mark, c = pages and 1 or 0 })
              call('ZADD', KEYS[1], t, member)
              reported = true
            end
            if mark > 0 then
              local r = #reply
              reply[r + 1] = position
              reply[r + 2] = tostring(z)
              reply[r + 3] = tostring(expected)
              reply[r + 4] = marked
              reply[r + 5] = suppressed
              reply[r + 6] = t
              reply[r + 7] = mark
              reply[r + 8] = tostring(v)
              reply[r + 9] = pages and (((ch or 0) < STEPPY and n < MATURE) and 1 or 2) or 0
            elseif suppressed == 0 and ef == 1 then
              continuing = continuing + 1
            end
            if pages and suppressed == 0 then
              call('ZADD', KEYS[3], t, id .. '|' .. eb .. '|' .. mark)
              paged = true
            end
          else
            rn, rs, ra = 0, 0, nil
            if ep == 1 then
              if abs(z) < threshold * HYSTERESIS then ec = (ec or 0) + 1 end
              if ec >= calmNeeded then
                -- The episode is over: reported with its peak and its last anomalous time (not listed by ingestion).
                local confirmed = ef
                ep, ec, ef = 0, 0, 0
                local r = #reply
                reply[r + 1] = position
                reply[r + 2] = tostring(ez)
                reply[r + 3] = tostring(expected)
                reply[r + 4] = es
                reply[r + 5] = 0
                reply[r + 6] = el
                reply[r + 7] = 3
                reply[r + 8] = tostring(v)
                reply[r + 9] = confirmed
              end
            end
          end
        end

        -- Learn.
        local learned = n + 1
        local alpha = max(1 / learned, ALPHA)
        local slowAlpha = max(1 / learned, 1 - exp(-(t - last) / DAY))
        if rn >= SHIFT_RUN then
          local shift = rs / rn
          m, d, sl = m + shift, d + shift, sl + shift
          rn, rs = 0, 0
        else
          local level = m + b + alpha * clip(v - m - b, CLIP * scaleP)
          b = BETA * (level - m) + (1 - BETA) * b
          m = level
          d = d + alpha * clip(v - season - d, CLIP * scaleS)
          sl = sl + slowAlpha * clip(v - season - sl, CLIP * scaleS)
        end
        local ePlain, eSeason = v - m, v - (d + season)
        -- An anomalous sample teaches neither the daily shape nor the usual spread (a dropout must not become
        -- part of the day, nor widen the band that the next anomaly is measured against); the tail tracker
        -- still sees it, so a heavy tail is learned.
        if not anomalous then
          cv = season + GAMMA * ((v - sl) - season)
          local scaleAlpha = max(1 / learned, SCALE_ALPHA)
          sp = sp + scaleAlpha * (min(abs(ePlain), CLIP * scaleP) - sp)
          ss = ss + scaleAlpha * (min(abs(eSeason), CLIP * scaleS) - ss)
        end
        qp = tail(qp, ePlain, learned)
        -- Against a learned shape, a residual of more than TAIL_CLIP_SEASON spreads (a dropout, a broken day)
        -- is an event, not part of the series' tail: it would blunt detection for days.
        if abs(eSeason) <= TAIL_CLIP_SEASON * scaleS then qs = tail(qs, eSeason, learned) end
        if v ~= floor(v) then iv = 0 end
        ch = (ch or 0) + alpha * ((v ~= lv and 1 or 0) - (ch or 0))
        if v ~= lv then
          local moved = abs(v - lv)
          if not st or moved < st then st = moved end
        end
        n, last, lv = learned, t, v
      end
    end

    if band and withHistory then
      local minute = floor(t / MINUTE_MS)
      if hm == minute then
        hv, hl, hh, he, hb = v, min(hl, v), max(hh, v), expected, band
      else
        keepMinute(index, minute, hm, hv, hl, hh, he, hb)
        hm, hv, hl, hh, he, hb = minute, v, v, v, expected, band
      end
    end
    position = nextOf[position]
  end

  -- Save. (A counter's first value alone is kept too: its rate starts from it.)
  if (n > 0 and sound(m, b, d, sl, sp, ss, qp, qs, lv, st, rv, ez, rs, cv)) or (n == 0 and rt) then
    -- A new model is indexed and gets its TTL at once, whatever `now` is (a backtest's clock may be near 0).
    local refresh = not packed or now - (ttlAt or 0) >= TTL_REFRESH_MS
    if refresh then ttlAt = now end
    -- (A counter with only its first value has no level yet: its fields are zeros until its first rate.)
    local scalars = pack(SCALAR_LAYOUT, VERSION, n, t0 or 0, last or 0, now, ttlAt or UNSET, m or 0, b or 0,
      d or 0, sl or 0, sp or 0, ss or 0, qp or 0, qs or 0, st or UNSET, lv or 0, h0 or UNSET, h1 or UNSET,
      ep or 0, ec or 0, es or 0, ez or 0, eb or UNSET, el or UNSET, rn or 0, rs or 0, iv or 0, cb, cv,
      k, rv or 0, rt or UNSET, ra or UNSET, ef or 0, ch or 0, hm or UNSET, hv or 0, hl or 0, hh or 0, he or 0, hb or 0)
    if packed and not migrated and changes <= MAX_RANGES then
      -- The usual case: the scalars and the one or two buckets learned are written in place.
      call('SETRANGE', key, 0, scalars)
      if changed then
        for i, value in pairs(changed) do call('SETRANGE', key, SCALAR_BYTES + 4 * (i - 1), pack('<f', value)) end
      end
    else
      local profile = {}
      for i = 1, 2 * BUCKETS do profile[i] = bucketOf(i, cb, cv, changed, packed, profileAt) end
      -- The cached bucket is written with the rest.
      call('SET', key, scalars .. pack(PROFILE_LAYOUT, unpack(profile)), 'KEEPTTL')
    end
    if refresh then
      call('PEXPIRE', key, ttl)
      if desc > 0 then
        call('HSET', KEYS[2], id, ARGV[desc])
      elseif call('HEXISTS', KEYS[2], id) == 0 then
        undescribed = undescribed + 1
      end
      call('PEXPIRE', KEYS[2], ttl)
    end
  end
end

reply[2] = learning
reply[3] = stale
reply[4] = continuing
reply[5] = undescribed
if reported then
  -- Bounded work in an anomaly storm: the window keeps its newest 10,000 members.
  call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowMs)
  call('ZREMRANGEBYRANK', KEYS[1], 0, -10001)
  call('PEXPIRE', KEYS[1], windowMs)
end
if paged then
  call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - windowMs)
  call('ZREMRANGEBYRANK', KEYS[3], 0, -10001)
  call('PEXPIRE', KEYS[3], windowMs)
  reply[1] = call('ZCOUNT', KEYS[3], now - triggerWindowMs, '+inf')
end
return reply
