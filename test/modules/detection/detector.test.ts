import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DetectionConfig, Severity } from '../../../src/db/schema/index.js'
import { decodeModel, EPISODE_CALM_SAMPLES, MAX_SAMPLES_PER_CALL, SAMPLE_BYTES, scoreServiceBatch, scoreServiceSamples, seriesToScore, type DetectedSampleAnomaly } from '../../../src/modules/detection/detector.js'
import { seriesIdOf } from '../../../src/modules/detection/series.js'
import { baselinesOf } from '../../../src/modules/detection/window.js'
import { keys } from '../../../src/redis/keys.js'
import { defineScripts } from '../../../src/redis/scripts.js'
import { gaussian, prng } from '../../random.js'
import { DETECTION_DEFAULTS } from '../../../src/modules/services/schemas.js'

/*
 * The scoring script (src/redis/scripts/score-samples.lua) against a real Redis, with explicit timestamps and
 * seeded noise: every run feeds the same samples, so every outcome below is deterministic.
 */

let redis: Redis
beforeAll(() => {
  redis = new Redis(process.env.REDIS_URL!)
  defineScripts(redis)
})
afterAll(() => redis.quit())

const MINUTE = 60_000
const DAY = 86_400_000
const STEP = 5 * MINUTE
/** Monday 1 January 2024, 00:00 UTC: day boundaries and weekday/weekend halves fall on known samples. */
const T0 = Date.UTC(2024, 0, 1)
const METRIC = 'latency_ms'

const config = (overrides: Partial<DetectionConfig> = {}): DetectionConfig => ({ ...DETECTION_DEFAULTS, metrics: {}, ...overrides })


interface Point {
  time: number
  value: number
  suppressedUpTo?: Severity | null
}
/** `count` samples every `step` from `from`: value(i, time). */
const grid = (from: number, count: number, value: (i: number, time: number) => number, step = STEP): Point[] =>
  Array.from({ length: count }, (_, i) => ({ time: from + i * step, value: value(i, from + i * step) }))
/** The sample index (from T0, in 5-minute steps) of a reported mark. */
const at = (mark: DetectedSampleAnomaly) => (mark.time - T0) / STEP

interface Fed {
  anomalies: DetectedSampleAnomaly[]
  ended: DetectedSampleAnomaly[]
  confirmed: DetectedSampleAnomaly[]
  learning: number
  stale: number
  continuing: number
  recentAnomalies: number
}

/** One series of a fresh service; feed() sends batches with `now` = the batch's last sample time. */
function series(detection = config(), metric = METRIC) {
  const serviceId = randomUUID()
  return {
    serviceId,
    async feed(points: Point[], { batch = 288, now }: { batch?: number; now?: number } = {}): Promise<Fed> {
      const out: Fed = { anomalies: [], ended: [], confirmed: [], learning: 0, stale: 0, continuing: 0, recentAnomalies: 0 }
      for (let i = 0; i < points.length; i += batch) {
        const chunk = points.slice(i, i + batch)
        const samples = chunk.map((p) => ({ series: seriesToScore(metric), value: p.value, time: p.time, suppressedUpTo: p.suppressedUpTo ?? null }))
        const scored = await scoreServiceBatch(redis, serviceId, detection, samples, now ?? chunk.at(-1)!.time)
        out.anomalies.push(...scored.anomalies)
        out.ended.push(...scored.ended)
        out.confirmed.push(...scored.confirmed)
        out.learning += scored.learning
        out.stale += scored.stale
        out.continuing += scored.continuing
        out.recentAnomalies = scored.recentAnomalies
      }
      return out
    },
    baseline: async () => (await baselinesOf(redis, serviceId, detection)).items.find((b) => b.metric === metric),
    model: () => redis.getBuffer(keys.model(serviceId, seriesIdOf(metric, {})))
  }
}
const starts = (fed: Fed) => fed.anomalies.filter((a) => a.kind === 'start')

describe('detector (Lua scoring script, real Redis)', () => {
  describe('seasonality', () => {
    const sine = (seed: number, days: number) => {
      const noise = gaussian(seed)
      return grid(T0, days * 288, (_, time) => 100 + 50 * Math.sin((2 * Math.PI * (time % DAY)) / DAY) + 2 * noise())
    }

    it('learns a daily cycle: no episode after the first 2 days, seasonal spread near the noise, and a far tighter fit than without season', async () => {
      const seasonal = series(config())
      const fed = await seasonal.feed(sine(42, 14))
      expect(starts(fed).filter((a) => a.time >= T0 + 2 * DAY)).toEqual([])
      const baseline = (await seasonal.baseline())!
      expect(baseline).toMatchObject({ seasonal: true, state: 'ready', samples: 14 * 288, episode: null })
      expect(baseline.stddev).toBeGreaterThan(1.5)
      expect(baseline.stddev).toBeLessThan(3.5)

      // The same series without a season: its spread must absorb the whole ±50 swing.
      const plain = series(config({ seasonality: 'none' }))
      await plain.feed(sine(42, 14))
      const plainBaseline = (await plain.baseline())!
      expect(plainBaseline.seasonal).toBe(false)
      expect(plainBaseline.stddev).toBeGreaterThan(4 * baseline.stddev)

      // So a 30-point dip at the daily peak (06:00 UTC, expected ~150) is an anomaly only for the seasonal model.
      const peak = T0 + 14 * DAY + 6 * 60 * MINUTE
      const dip = [...grid(T0 + 14 * DAY, 72, (_, time) => 100 + 50 * Math.sin((2 * Math.PI * (time % DAY)) / DAY)), { time: peak, value: 120 }]
      const seasonalDip = await seasonal.feed(dip)
      expect(seasonalDip.anomalies).toHaveLength(1)
      expect(seasonalDip.anomalies[0]).toMatchObject({ kind: 'start', severity: 'critical', time: peak })
      expect(seasonalDip.anomalies[0]!.expected).toBeGreaterThan(140)
      expect((await plain.feed(dip)).anomalies).toEqual([])
    })
  })

  describe('heavy tails', () => {
    // Spikes of ±5σ on 3% of samples (fixed size plus the usual noise). With Gaussian-sized spikes (noise × 5)
    // the tail beyond the 99th percentile is itself wide: threshold 4 × p99 / 2.576 ≈ 1.55 × p99 ≈ 1.5σ of the
    // spikes, so ~12% of them stay anomalies (1–2 warnings a day) whatever the model learns: a tolerance, not tested.
    const spiky = (seed: number, from: number, count: number) => {
      const uniform = prng(seed)
      const noise = gaussian(seed + 1000)
      return grid(from, count, () => 100 + 2 * noise() + (uniform() < 0.03 ? (uniform() < 0.5 ? -10 : 10) : 0))
    }
    const SEEDS = [1, 2, 3, 4, 5]

    it('once the tail is learned (second week): at most a handful of episodes, and one spike far beyond the usual ones is reported', async () => {
      for (const seed of SEEDS) {
        const s = series()
        await s.feed(spiky(seed, T0, 7 * 288))
        const week2 = await s.feed(spiky(seed + 50, T0 + 7 * DAY, 7 * 288))
        expect(starts(week2).length, `seed ${seed}`).toBeLessThanOrEqual(3)
        expect(week2.anomalies.filter((a) => a.severity === 'critical'), `seed ${seed}`).toEqual([])
        // 30σ: six times the usual spikes.
        const big = await s.feed([{ time: T0 + 14 * DAY, value: 160 }])
        expect(big.anomalies, `seed ${seed}`).toHaveLength(1)
        expect(big.anomalies[0]!.severity).toBe('critical')
      }
    })

    // The tail tracker takes larger steps while the series is young, so the spikes' p99 is learned within days 1-2.
    it('from the first day: a week of ±5σ spikes on 3% of samples gives at most a handful of episodes', async () => {
      for (const seed of SEEDS) {
        const s = series()
        const week = await s.feed(spiky(seed, T0, 7 * 288))
        expect(starts(week).length, `seed ${seed}`).toBeLessThanOrEqual(5)
      }
    })
  })

  describe('quantised and flat series', () => {
    it('an integer series toggling between 10 and 11 has no episode; a jump of 20 quanta is one', async () => {
      const uniform = prng(7)
      const s = series()
      const fed = await s.feed(grid(T0, 2 * 288, () => (uniform() < 0.5 ? 10 : 11)))
      expect(fed.anomalies).toEqual([])
      const jump = await s.feed([{ time: T0 + 2 * DAY, value: 31 }])
      expect(jump.anomalies).toHaveLength(1)
      expect(jump.anomalies[0]).toMatchObject({ kind: 'start', severity: 'critical' })
    })

    // A series that has only ever been integer-valued moves by at least 1: one quantum is not even an anomaly.
    it('a constant integer series moving by one quantum is not critical', async () => {
      const s = series()
      expect((await s.feed(grid(T0, 288, () => 10))).anomalies).toEqual([])
      const moved = await s.feed(grid(T0 + DAY, 40, () => 11))
      expect(moved.anomalies.filter((a) => a.severity === 'critical')).toEqual([])
    })

    it('a constant series jumping by 20 quanta is an episode', async () => {
      const s = series()
      await s.feed(grid(T0, 288, () => 10))
      const jump = await s.feed([{ time: T0 + DAY, value: 30 }])
      expect(jump.anomalies).toHaveLength(1)
      expect(jump.anomalies[0]).toMatchObject({ kind: 'start', severity: 'critical', expected: 10 })
    })
  })

  it('a steady linear growth with noise for a week has no episode, and the level follows it', async () => {
    const noise = gaussian(11)
    const s = series()
    const fed = await s.feed(grid(T0, 7 * 288, (i) => 100 + 0.05 * i + 2 * noise()))
    expect(fed.anomalies).toEqual([])
    const baseline = (await s.baseline())!
    expect(baseline.mean).toBeGreaterThan(195)
    expect(baseline.mean).toBeLessThan(205)
    expect(baseline.stddev).toBeLessThan(3)
  })

  describe('warm-up', () => {
    it('nothing is scored before minSamples samples; a huge spike right after the warm-up is reported', async () => {
      const noise = gaussian(5)
      const s = series()
      const warmup = await s.feed(grid(T0, 29, () => 100 + 2 * noise()))
      expect(warmup).toMatchObject({ learning: 29, anomalies: [], stale: 0 })
      expect((await s.baseline())!.state).toBe('learning')
      // The 30th sample still only feeds the baseline; after it, the next one is scored.
      expect(await s.feed([{ time: T0 + 29 * STEP, value: 100 }])).toMatchObject({ learning: 1, anomalies: [] })
      expect((await s.baseline())!.state).toBe('ready')
      const spike = await s.feed([{ time: T0 + 30 * STEP, value: 200 }])
      expect(spike.learning).toBe(0)
      expect(spike.anomalies).toHaveLength(1)
      expect(spike.anomalies[0]).toMatchObject({ kind: 'start', severity: 'critical', index: 0 })
    })

    it('nothing is scored before minSpanSeconds of time, even with many samples (and a spike among them)', async () => {
      const noise = gaussian(6)
      const s = series()
      // One sample every 10 s: 180 samples span 29m50s (< 1800 s), far more than minSamples.
      const early = grid(T0, 180, (i) => (i === 150 ? 1000 : 100 + 2 * noise()), 10_000)
      const warmup = await s.feed(early)
      expect(warmup).toMatchObject({ learning: 180, anomalies: [] })
      expect((await s.baseline())!).toMatchObject({ state: 'learning', samples: 180 })
      const next = await s.feed([{ time: T0 + 180 * 10_000, value: 100 }])
      expect(next.learning).toBe(0)
      expect((await s.baseline())!.state).toBe('ready')
    })
  })

  describe('episodes', () => {
    it('one start, an escalation when it turns critical, continuing for the rest, an end after the calm samples, then a new episode', async () => {
      const noise = gaussian(21)
      const s = series()
      expect((await s.feed(grid(T0, 288, () => 100 + 2 * noise()))).anomalies).toEqual([])

      // A 5-sample excursion, one sample per call: warning, warning, critical, warning, warning.
      const marks: DetectedSampleAnomaly[] = []
      let continuing = 0
      const ended: DetectedSampleAnomaly[] = []
      let i = 288
      for (const value of [112, 114, 120, 114, 112]) {
        const fed = await s.feed([{ time: T0 + i++ * STEP, value }])
        marks.push(...fed.anomalies)
        continuing += fed.continuing
        ended.push(...fed.ended)
      }
      expect(marks.map((m) => [m.kind, m.severity, at(m), m.pages])).toEqual([
        ['start', 'warning', 288, false],
        ['escalation', 'critical', 290, true]
      ])
      // The second anomalous sample confirmed the episode (a mark of its own, not listed); the last two continue it.
      expect(continuing).toBe(2)
      expect(ended).toEqual([])
      expect((await s.baseline())!.episode).toMatchObject({ severity: 'critical', startedAt: new Date(T0 + 288 * STEP).toISOString() })

      // Calm samples: the end is reported with the 48th, carrying the peak |z| and the last anomalous time.
      for (let calm = 1; calm <= EPISODE_CALM_SAMPLES + 2; calm++) {
        const fed = await s.feed([{ time: T0 + i++ * STEP, value: 100 }])
        expect(fed.anomalies).toEqual([])
        if (calm === EPISODE_CALM_SAMPLES) expect(fed.ended, `calm sample ${calm}`).toHaveLength(1)
        else expect(fed.ended, `calm sample ${calm}`).toEqual([])
        ended.push(...fed.ended)
      }
      expect(EPISODE_CALM_SAMPLES).toBe(48)
      const [end] = ended
      expect(end).toMatchObject({ kind: 'end', severity: 'critical', time: T0 + 292 * STEP })
      expect(end!.zScore).toBeCloseTo(marks[1]!.zScore, 6)
      expect((await s.baseline())!.episode).toBeNull()

      // A second excursion after the end is a new episode.
      const again = await s.feed([{ time: T0 + i * STEP, value: 113 }])
      expect(again.anomalies).toHaveLength(1)
      expect(again.anomalies[0]).toMatchObject({ kind: 'start', severity: 'warning' })
      expect(again.continuing).toBe(0)
    })

    it('an episode pages once confirmed: when its anomalous run has lasted confirmSeconds, or at once on a series with 1,000 samples of history', async () => {
      const noise = gaussian(33)
      const young = series()
      await young.feed(grid(T0, 288, () => 100 + 2 * noise()))
      // One extreme sample on a young series: reported, not confirmed; it neither pages nor keeps anything open.
      const first = await young.feed([{ time: T0 + 288 * STEP, value: 200 }])
      expect(first.anomalies).toMatchObject([{ kind: 'start', severity: 'critical', pages: false }])
      expect(first).toMatchObject({ confirmed: [], recentAnomalies: 0, continuing: 0 })
      expect(await redis.exists(keys.paging(young.serviceId))).toBe(0)
      // A second anomalous sample 5 minutes later (≥ confirmSeconds 60) confirms it: a confirmation mark with the
      // episode's severity so far, which pages.
      const second = await young.feed([{ time: T0 + 289 * STEP, value: 112 }])
      expect(second.anomalies).toEqual([])
      expect(second.confirmed).toMatchObject([{ kind: 'confirm', severity: 'critical', pages: true, index: 0 }])
      expect(second.recentAnomalies).toBe(1)
      // Further anomalous samples continue a confirmed episode; its end says it was confirmed.
      expect((await young.feed([{ time: T0 + 290 * STEP, value: 112 }])).continuing).toBe(1)
      const calm = await young.feed(grid(T0 + 291 * STEP, EPISODE_CALM_SAMPLES, () => 100))
      expect(calm.ended).toMatchObject([{ kind: 'end', pages: true }])

      // A lone blip that ends unconfirmed says so, and the next anomaly starts a new, unconfirmed episode.
      await young.feed([{ time: T0 + 400 * STEP, value: 200 }])
      const quiet = await young.feed(grid(T0 + 401 * STEP, EPISODE_CALM_SAMPLES, () => 100))
      expect(quiet.ended).toMatchObject([{ pages: false }])

      // 1,000 samples of history: one extreme sample pages at once.
      const mature = series()
      await mature.feed(grid(T0, 1000, () => 100 + 2 * noise()))
      const spike = await mature.feed([{ time: T0 + 1000 * STEP, value: 200 }])
      expect(spike.anomalies).toMatchObject([{ kind: 'start', severity: 'critical', pages: true }])
      expect(spike.recentAnomalies).toBe(1)
    })

    it('a series that holds its value pages its steps as warnings while young, at their severity once mature', async () => {
      // 0 with a blip to 1 every 50 samples: it changes on 4% of its samples.
      const holding = (i: number) => (i % 50 === 0 ? 1 : 0)
      const young = series()
      await young.feed(grid(T0, 288, holding))
      const step = await young.feed([{ time: T0 + 288 * STEP, value: 50 }, { time: T0 + 289 * STEP, value: 50 }])
      expect(step.anomalies).toMatchObject([{ kind: 'start', severity: 'critical', pages: false }])
      expect(step.confirmed).toMatchObject([{ severity: 'critical', pagingSeverity: 'warning' }])

      const mature = series()
      await mature.feed(grid(T0, 1000, holding))
      const spike = await mature.feed([{ time: T0 + 1000 * STEP, value: 50 }])
      expect(spike.anomalies).toMatchObject([{ kind: 'start', severity: 'critical', pages: true, pagingSeverity: 'critical' }])
    })

    it('a permanent step of +20σ is one episode; once it ends the new level raises none', async () => {
      const noise = gaussian(31)
      const s = series()
      const fed = await s.feed(grid(T0, 4 * 288, (i) => 100 + (i >= 288 ? 40 : 0) + 2 * noise()))
      expect(fed.anomalies.map((a) => [a.kind, a.severity, at(a)])).toEqual([['start', 'critical', 288]])
      expect(fed.ended).toHaveLength(1)
      const endedAt = at(fed.ended[0]!)
      expect(endedAt).toBeLessThan(288 + 24)
      // Every sample up to the end was part of the episode, none after it: the level shift was adopted. (The
      // second one confirmed the episode: a mark of its own, not a continuing sample.)
      expect(fed.confirmed).toHaveLength(1)
      expect(fed.continuing).toBe(endedAt - 288 - 1)
      const baseline = (await s.baseline())!
      expect(baseline.mean).toBeGreaterThan(137)
      expect(baseline.mean).toBeLessThan(143)
      expect(baseline.episode).toBeNull()
    })
  })

  describe('direction, stale samples, suppression', () => {
    it("direction 'up' ignores drops and reports rises", async () => {
      const noise = gaussian(41)
      const s = series(config({ metrics: { [METRIC]: { direction: 'up' } } }))
      await s.feed(grid(T0, 288, () => 100 + 2 * noise()))
      const drop = await s.feed([{ time: T0 + 288 * STEP, value: 40 }])
      expect(drop.anomalies).toEqual([])
      expect(drop.continuing).toBe(0)
      const rise = await s.feed([{ time: T0 + 289 * STEP, value: 160 }])
      expect(rise.anomalies).toHaveLength(1)
      expect(rise.anomalies[0]).toMatchObject({ kind: 'start', severity: 'critical' })
      expect(rise.anomalies[0]!.zScore).toBeGreaterThan(0)
    })

    it('a sample older than the series’ last is counted stale, not scored and not learned', async () => {
      const noise = gaussian(51)
      const s = series()
      await s.feed(grid(T0, 288, () => 100 + 2 * noise()))
      const last = T0 + 287 * STEP
      const before = await s.model()
      const stale = await s.feed([{ time: last - 10 * STEP, value: 5000 }], { now: last })
      expect(stale).toMatchObject({ stale: 1, learning: 0, anomalies: [], ended: [], continuing: 0 })
      expect((await s.model())!.equals(before!)).toBe(true)
    })

    it('suppressedUpTo marks an anomaly suppressed, and only unsuppressed ones count as recent', async () => {
      const noise = gaussian(61)
      const s = series()
      await s.feed(grid(T0, 288, () => 100 + 2 * noise()))
      const fed = await s.feed([
        { time: T0 + 288 * STEP, value: 112, suppressedUpTo: 'warning' },
        { time: T0 + 289 * STEP, value: 112, suppressedUpTo: 'warning' },
        { time: T0 + 290 * STEP, value: 130, suppressedUpTo: 'warning' }
      ])
      expect(fed.anomalies.map((a) => [a.index, a.kind, a.severity, a.suppressed])).toEqual([
        [0, 'start', 'warning', true],
        [2, 'escalation', 'critical', false]
      ])
      // The suppressed warning in between does not keep anything going.
      expect(fed.continuing).toBe(0)
      expect(fed.recentAnomalies).toBe(1)
      const window = await redis.zrange(keys.recentAnomalies(s.serviceId), 0, '-1')
      expect(window.map((m) => m.slice(0, 2))).toEqual(['s|', 'u|'])

      const critical = series()
      await critical.feed(grid(T0, 288, () => 100 + 2 * noise()))
      const muted = await critical.feed([{ time: T0 + 288 * STEP, value: 200, suppressedUpTo: 'critical' }])
      expect(muted.anomalies).toHaveLength(1)
      expect(muted.anomalies[0]).toMatchObject({ severity: 'critical', suppressed: true })
      expect(muted.recentAnomalies).toBe(0)
    })
  })
})

describe('several series in one call', () => {
  it('each series is scored on its own samples in order, and the marks come back in batch order', async () => {
    // Two series learn a steady level over a day; then one call interleaves them, B's spike placed before A's
    // (the script takes each series' samples together: A's first, since A appears first in the call).
    const noise = gaussian(7)
    const a = seriesToScore('a_ms')
    const b = seriesToScore('b_ms')
    const serviceId = randomUUID()
    const history = grid(T0, 288, (_, time) => time).flatMap((p) => [
      { series: a, value: 100 + 2 * noise(), time: p.time, suppressedUpTo: null },
      { series: b, value: 50 + noise(), time: p.time, suppressedUpTo: null }
    ])
    await scoreServiceSamples(redis, serviceId, config(), history, T0 + DAY)
    const t = T0 + DAY
    const mixed = [
      { series: a, value: 100, time: t, suppressedUpTo: null },
      { series: b, value: 50, time: t, suppressedUpTo: null },
      { series: b, value: 200, time: t + STEP, suppressedUpTo: null },
      { series: a, value: 400, time: t + 2 * STEP, suppressedUpTo: null },
      { series: a, value: 100, time: t + 3 * STEP, suppressedUpTo: null },
      { series: b, value: 50, time: t + 3 * STEP, suppressedUpTo: null }
    ]
    const scored = await scoreServiceBatch(redis, serviceId, config(), mixed, t + 3 * STEP)
    expect(scored.anomalies.map(({ index, kind, value, time }) => ({ index, kind, value, time }))).toEqual([
      { index: 2, kind: 'start', value: 200, time: t + STEP },
      { index: 3, kind: 'start', value: 400, time: t + 2 * STEP }
    ])
    expect(scored.stale).toBe(0)
  })
})

describe('argument encodings', () => {
  it('samples sent one per call (as text) and several per call (packed) score and learn alike', async () => {
    // Per-metric threshold and direction, suppression ceilings and a counter travel in both encodings.
    const detection = config({ metrics: { up_ms: { direction: 'up', zThreshold: 3 } } })
    const noise = gaussian(11)
    const gauge = seriesToScore('up_ms')
    const counter = seriesToScore('requests_total', {}, 'counter')
    let total = 0
    const samples = grid(T0, 400, (i) => i).flatMap(({ time }, i) => [
      { series: gauge, value: i === 300 || i === 380 ? 125 : 100 + 2 * noise(), time, suppressedUpTo: i === 380 ? ('critical' as const) : null },
      { series: counter, value: (total += i === 320 ? 5000 : 50 + noise()), time, suppressedUpTo: null }
    ])
    const one = randomUUID()
    const marksOne: DetectedSampleAnomaly[] = []
    for (const sample of samples) marksOne.push(...(await scoreServiceBatch(redis, one, detection, [sample], sample.time)).anomalies)
    const packed = randomUUID()
    const marksPacked: DetectedSampleAnomaly[] = []
    for (let i = 0; i < samples.length; i += 2) {
      const pair = samples.slice(i, i + 2)
      marksPacked.push(...(await scoreServiceBatch(redis, packed, detection, pair, pair[1]!.time)).anomalies)
    }
    const withoutPosition = (marks: DetectedSampleAnomaly[]) => marks.map(({ index: _, ...mark }) => mark)
    expect(withoutPosition(marksOne)).toEqual(withoutPosition(marksPacked))
    expect(marksOne.map(({ time, suppressed }) => ({ time, suppressed }))).toEqual(
      expect.arrayContaining([{ time: T0 + 300 * STEP, suppressed: false }, { time: T0 + 320 * STEP, suppressed: false }, { time: T0 + 380 * STEP, suppressed: true }])
    )
    for (const series of [gauge, counter]) {
      const [a, b] = await Promise.all([one, packed].map(async (serviceId) => decodeModel(await redis.getBuffer(keys.model(serviceId, series.id)))))
      // (Only the times of its last write and TTL refresh differ: the calls' clocks do.)
      expect({ ...a, at: 0, ttlAt: 0 }).toEqual({ ...b, at: 0, ttlAt: 0 })
      expect(a!.n).toBeGreaterThan(390)
    }
  })
})

describe('calls of bounded length', () => {
  it('a large batch is scored in calls of at most MAX_SAMPLES_PER_CALL samples, with the same outcome as one call', async () => {
    const samples = grid(T0, 1200, (i) => (i === 1100 ? 400 : 100 + gaussian(i)() * 2)).map(({ time, value }) => ({
      series: seriesToScore(METRIC),
      value,
      time,
      suppressedUpTo: null
    }))
    const calls: number[] = []
    const counting = new Proxy(redis, {
      get(target, property, receiver) {
        if (property !== 'scoreSamples') return Reflect.get(target, property, receiver)
        return (numKeys: number, ...rest: (string | number | Buffer)[]) => {
          // The packed argument: its tag, 64 bytes of settings, the series part's length, the series, the samples.
          const packed = rest[numKeys] as Buffer
          calls.push((packed.length - 69 - packed.readUInt32LE(65)) / SAMPLE_BYTES)
          return target.scoreSamples(numKeys, ...rest)
        }
      }
    })
    const split = await scoreServiceSamples(counting, randomUUID(), config(), samples, samples.at(-1)!.time)
    expect(calls).toEqual([MAX_SAMPLES_PER_CALL, MAX_SAMPLES_PER_CALL, 1200 - 2 * MAX_SAMPLES_PER_CALL])
    const whole = await scoreServiceBatch(redis, randomUUID(), config(), samples, samples.at(-1)!.time)
    expect(split).toEqual(whole)
    expect(split.anomalies.map((mark) => mark.index)).toContain(1100)
  })
})
