import type { RedisClient } from '../../redis/client.js'
import type { DetectionConfig, Severity } from '../../db/schema/index.js'
import { keys, TTL } from '../../redis/keys.js'
import '../../redis/scripts.js'
import { seriesIdOf, type Labels, type SeriesKind } from './series.js'

/**
 * The largest magnitude of a value the model holds. Its seasonal profile is kept as 32-bit floats (up to
 * 3.4e38) and a counter's rate over one millisecond is a thousand times its value: with values within
 * ±1e30, nothing the model computes or stores overflows (a first value of 1e200 once made its spread NaN).
 */
export const MAX_SAMPLE_MAGNITUDE = 1e30

/** Consecutive samples below half the threshold that end an episode. */
export const EPISODE_CALM_SAMPLES = 48

/**
 * The Redis keys one scoring run uses: the live ones of a service, or a backtest's scratch ones. All carry
 * the same hash tag, so one script call may touch them all (on a cluster too).
 */
export interface ModelKeys {
  model: (seriesId: string) => string
  /** hash: series id → its descriptor (metric, labels, kind) */
  series: string
  window: string
  /** unsuppressed marks of confirmed episodes (what opens incidents) */
  paging: string
  /** how long a model outlives its last sample */
  ttlMs: number
  /** the series' recent values, minute by minute (series-history.ts); a backtest keeps none */
  history?: (seriesId: string) => string
}
export const liveKeys = (serviceId: string): ModelKeys => ({
  model: (seriesId) => keys.model(serviceId, seriesId),
  history: (seriesId) => keys.history(serviceId, seriesId),
  series: keys.series(serviceId),
  window: keys.recentAnomalies(serviceId),
  paging: keys.paging(serviceId),
  ttlMs: TTL.baselineMs
})

/** A series as the scoring script needs it. */
export interface ScoredSeries {
  id: string
  metric: string
  kind: Exclude<SeriesKind, 'bucket'>
  /** the descriptor stored with the model (metric, labels, kind as JSON); null when this process sent it lately */
  descriptor: string | null
}

/** A series' descriptor as kept in `series:{serviceId}`. */
export interface SeriesDescriptor {
  m: string
  l: Labels
  k: SeriesKind
}
export const describeSeries = (metric: string, labels: Labels, kind: SeriesKind) => JSON.stringify({ m: metric, l: labels, k: kind } satisfies SeriesDescriptor)
/** A series to score, its descriptor sent along. */
export const seriesToScore = (metric: string, labels: Labels = {}, kind: ScoredSeries['kind'] = 'gauge'): ScoredSeries => ({
  id: seriesIdOf(metric, labels),
  metric,
  kind,
  descriptor: describeSeries(metric, labels, kind)
})

export interface SampleInput {
  series: ScoredSeries
  value: number
  /** epoch ms; undefined = arrival time (never older than its series, so concurrent callers all count) */
  time?: number
  /** severities up to this one are suppressed by a matching rule */
  suppressedUpTo: Severity | null
}

/**
 * What the script reports: an episode's start, its escalation to critical, its confirmation (the first
 * anomalous sample confirmSeconds after its start, when that is not also an escalation), or its end.
 */
export type EpisodeMark = 'start' | 'escalation' | 'confirm' | 'end'
const MARKS: Record<number, EpisodeMark> = { 1: 'start', 2: 'escalation', 3: 'end', 4: 'confirm' }

export interface DetectedSampleAnomaly {
  /** position of the sample in the batch */
  index: number
  /** the value scored: the sample's, or a counter's per-second rate */
  value: number
  zScore: number
  expected: number
  severity: Severity
  suppressed: boolean
  time: number
  kind: EpisodeMark
  /**
   * The episode is confirmed (it has lasted the service's confirmSeconds, or its series had 1,000 samples of
   * history when it started): this mark may open, escalate or keep open an incident. On an end: whether it
   * ever was.
   */
  pages: boolean
  /** the severity it pages with: a series that holds its value most of the time (it moves in steps) pages warnings */
  pagingSeverity: Severity
}

export interface ScoredBatch {
  /** samples that fed a baseline still warming up (too few samples or too short a time span) */
  learning: number
  /** samples older than their series: kept for the record, not learned */
  stale: number
  /** episode starts and escalations, in batch order */
  anomalies: DetectedSampleAnomaly[]
  /** episodes that ended: z is the peak, time the last anomalous sample */
  ended: DetectedSampleAnomaly[]
  /** episodes confirmed by this batch without an escalation (their start was reported before, unconfirmed) */
  confirmed: DetectedSampleAnomaly[]
  /** unsuppressed marks of confirmed episodes of the service within the warning window (0 unless this batch made one) */
  recentAnomalies: number
  /** unsuppressed anomalous samples of confirmed episodes already reported (they keep an incident from going quiet) */
  continuing: number
  /** new models whose descriptor was neither sent nor stored: the caller should send descriptors again */
  undescribed: number
}

const SEVERITY_RANK: Record<Severity, number> = { warning: 1, critical: 2 }
/** Single-character codes the script reads, and the model's kind numbers. */
const DIRECTION_CODE = { up: 'u', down: 'd', both: 'b' } as const
const SEASONALITY_CODE = { auto: 'a', none: 'n', daily: 'd', weekly: 'w' } as const
const KIND_CODE = { gauge: 0, counter: 1, time: 2 } as const
const byPosition = (a: DetectedSampleAnomaly, b: DetectedSampleAnomaly) => a.index - b.index
const FIELDS_PER_ANOMALY = 9
const HEADER = 5

/** The format tag, the settings (8 doubles) and the byte length of the series part (uint32). */
const HEAD_BYTES = 1 + 8 * 8 + 4
/** Fixed bytes per series (SERIES_LAYOUT '<dc1c1BHHc0Hc0'), before its id and metric. */
const SERIES_FIXED_BYTES = 17
/** Bytes per sample (SAMPLE_LAYOUT '<HddB'). */
export const SAMPLE_BYTES = 19

const settingsOf = (detection: DetectionConfig, space: ModelKeys, now: number) => [
  detection.minSamples,
  detection.minSpanSeconds * 1000,
  TTL.anomalyWindowMs,
  detection.warningWindowSeconds * 1000,
  space.ttlMs,
  now,
  EPISODE_CALM_SAMPLES,
  detection.confirmSeconds * 1000
]
/** A series' threshold and direction: the service's, or its metric's own. */
function thresholdOf(detection: DetectionConfig, series: ScoredSeries) {
  const metric = detection.metrics[series.metric]
  return { threshold: metric?.zThreshold ?? detection.zThreshold, direction: DIRECTION_CODE[metric?.direction ?? 'both'] }
}

/**
 * The script's arguments (score-samples.lua, ARGV[1]), then the descriptors to send (ARGV[2…]).
 *
 * Packed in one buffer: its settings, the byte length of the series part, each series in key order
 * (SERIES_LAYOUT), each sample (SAMPLE_LAYOUT); the script reads the numbers as they are, where parsing
 * text cost Redis about 1.5 µs per sample and series. But ioredis encodes a command that carries a buffer
 * through a slower path (about 7 µs more of the API's CPU per call, measured with real calls), so a call of
 * one sample, where that outweighs the parsing, goes as text. Key indices and descriptor positions are
 * 16-bit: a call carries at most a few hundred series (MAX_SAMPLES_PER_CALL; a backtest sends fewer).
 */
function scriptArguments(detection: DetectionConfig, space: ModelKeys, now: number, samples: SampleInput[], seriesList: ScoredSeries[], keyIndex: Map<string, number>) {
  const descriptors: string[] = []
  // Its descriptor's ARGV index (the first descriptor is ARGV[2]), 0 when not sent.
  const descriptorOf = (series: ScoredSeries) => (series.descriptor === null ? 0 : descriptors.push(series.descriptor) + 1)
  const ceilingOf = (sample: SampleInput) => (sample.suppressedUpTo ? SEVERITY_RANK[sample.suppressedUpTo] : 0)
  if (samples.length === 1) {
    const [sample] = samples as [SampleInput]
    const { series } = sample
    const { threshold, direction } = thresholdOf(detection, series)
    const text = `t ${settingsOf(detection, space, now).join(' ')} ${threshold} ${direction} ${SEASONALITY_CODE[detection.seasonality]} ${KIND_CODE[series.kind]} ${descriptorOf(series)} ${series.id} ${series.metric} ${sample.value} ${sample.time ?? -1} ${ceilingOf(sample)}`
    return { args: text, descriptors }
  }
  let seriesBytes = 0
  for (const series of seriesList) seriesBytes += SERIES_FIXED_BYTES + Buffer.byteLength(series.id) + Buffer.byteLength(series.metric)
  const packed = Buffer.allocUnsafe(HEAD_BYTES + seriesBytes + SAMPLE_BYTES * samples.length)
  let at = packed.write('b', 0, 'latin1')
  for (const setting of settingsOf(detection, space, now)) at = packed.writeDoubleLE(setting, at)
  at = packed.writeUInt32LE(seriesBytes, at)
  for (const series of seriesList) {
    const { threshold, direction } = thresholdOf(detection, series)
    at = packed.writeDoubleLE(threshold, at)
    at += packed.write(direction, at, 'latin1')
    at += packed.write(SEASONALITY_CODE[detection.seasonality], at, 'latin1')
    at = packed.writeUInt8(KIND_CODE[series.kind], at)
    at = packed.writeUInt16LE(descriptorOf(series), at)
    at = packed.writeUInt16LE(Buffer.byteLength(series.id), at)
    at += packed.write(series.id, at)
    at = packed.writeUInt16LE(Buffer.byteLength(series.metric), at)
    at += packed.write(series.metric, at)
  }
  for (const sample of samples) {
    at = packed.writeUInt16LE(keyIndex.get(sample.series.id)!, at)
    at = packed.writeDoubleLE(sample.value, at)
    at = packed.writeDoubleLE(sample.time ?? -1, at)
    at = packed.writeUInt8(ceilingOf(sample), at)
  }
  return { args: packed, descriptors }
}

/** Runs the scoring script for the samples of one service (one round trip, atomic per service). */
export async function scoreServiceBatch(
  redis: RedisClient,
  serviceId: string,
  detection: DetectionConfig,
  samples: SampleInput[],
  now = Date.now(),
  space: ModelKeys = liveKeys(serviceId)
): Promise<ScoredBatch> {
  // Each series gets its key index (4, 5, … in the order series first appear: the script relies on it).
  const keyIndex = new Map<string, number>()
  const scriptKeys = [space.window, space.series, space.paging]
  const seriesList: ScoredSeries[] = []
  for (const { series } of samples) {
    if (keyIndex.has(series.id)) continue
    keyIndex.set(series.id, scriptKeys.push(space.model(series.id)))
    seriesList.push(series)
  }
  if (space.history) {
    // One history key per model key, in the same order, after them.
    for (const series of seriesList) scriptKeys.push(space.history(series.id))
  }
  const { args, descriptors } = scriptArguments(detection, space, now, samples, seriesList, keyIndex)
  const reply = (await redis.scoreSamples(scriptKeys.length, ...scriptKeys, args, ...descriptors)) as (string | number)[]
  const anomalies: DetectedSampleAnomaly[] = []
  const ended: DetectedSampleAnomaly[] = []
  const confirmed: DetectedSampleAnomaly[] = []
  for (let i = HEADER; i < reply.length; i += FIELDS_PER_ANOMALY) {
    const kind = MARKS[Number(reply[i + 6])]!
    ;(kind === 'end' ? ended : kind === 'confirm' ? confirmed : anomalies).push({
      index: Number(reply[i]) - 1,
      value: Number(reply[i + 7]),
      zScore: Number(reply[i + 1]),
      expected: Number(reply[i + 2]),
      severity: reply[i + 3] === 2 ? 'critical' : 'warning',
      suppressed: reply[i + 4] === 1,
      time: Number(reply[i + 5]),
      kind,
      pages: Number(reply[i + 8]) > 0,
      pagingSeverity: reply[i + 8] === 1 ? 'warning' : reply[i + 3] === 2 ? 'critical' : 'warning'
    })
  }
  // The script reports marks series by series: back to batch order.
  for (const marks of [anomalies, ended, confirmed]) if (marks.length > 1) marks.sort(byPosition)
  return {
    learning: Number(reply[1]),
    stale: Number(reply[2]),
    anomalies,
    ended,
    confirmed,
    recentAnomalies: Number(reply[0]),
    continuing: Number(reply[3]),
    undescribed: Number(reply[4])
  }
}

/**
 * Samples per script call. Redis runs one script at a time, so a call is a pause for every other client:
 * at a few microseconds per sample, 500 keep it to a few milliseconds.
 */
export const MAX_SAMPLES_PER_CALL = 500

/**
 * scoreServiceBatch in calls of at most MAX_SAMPLES_PER_CALL samples, one after another (a series' samples
 * stay in order), merged as one batch: positions are the batch's, counts add up.
 */
export async function scoreServiceSamples(
  redis: RedisClient,
  serviceId: string,
  detection: DetectionConfig,
  samples: SampleInput[],
  now = Date.now()
): Promise<ScoredBatch> {
  if (samples.length <= MAX_SAMPLES_PER_CALL) return scoreServiceBatch(redis, serviceId, detection, samples, now)
  const merged: ScoredBatch = { learning: 0, stale: 0, anomalies: [], ended: [], confirmed: [], recentAnomalies: 0, continuing: 0, undescribed: 0 }
  for (let from = 0; from < samples.length; from += MAX_SAMPLES_PER_CALL) {
    const part = await scoreServiceBatch(redis, serviceId, detection, samples.slice(from, from + MAX_SAMPLES_PER_CALL), now)
    const shifted = (marks: DetectedSampleAnomaly[]) => marks.map((mark) => ({ ...mark, index: mark.index + from }))
    merged.learning += part.learning
    merged.stale += part.stale
    merged.anomalies.push(...shifted(part.anomalies))
    merged.ended.push(...shifted(part.ended))
    merged.confirmed.push(...shifted(part.confirmed))
    merged.recentAnomalies = Math.max(merged.recentAnomalies, part.recentAnomalies)
    merged.continuing += part.continuing
    merged.undescribed += part.undescribed
  }
  return merged
}

/** The packed model's scalars, in the order score-samples.lua writes them (little-endian doubles), then the profile. */
const MODEL_SCALARS = ['v', 'n', 't0', 'last', 'at', 'ttlAt', 'm', 'b', 'd', 'sl', 'sp', 'ss', 'qp', 'qs', 'st', 'lv', 'h0', 'h1', 'ep', 'ec', 'es', 'ez', 'eb', 'el', 'rn', 'rs', 'iv', 'cb', 'cv', 'k', 'rv', 'rt', 'ra', 'ef', 'ch', 'hm', 'hv', 'hl', 'hh', 'he', 'hb'] as const
const MODEL_VERSION = 8
/** Version 7: the same without the minute's summary (hm…hb); the script carries such a model over. */
const V7_SCALARS = 35
const PROFILE_BUCKETS = 96
export const MODEL_BYTES = MODEL_SCALARS.length * 8 + PROFILE_BUCKETS * 4
const V7_BYTES = V7_SCALARS * 8 + PROFILE_BUCKETS * 4
/** The minute a series is in, summed up for its history (score-samples.lua, remember). */
export interface MinuteSummary {
  minute: number
  last: number
  lo: number
  hi: number
  expected: number
  band: number
}
export type Model = Record<(typeof MODEL_SCALARS)[number], number> & { profile: number[]; currentMinute: MinuteSummary | null }

/** Reads a series' packed model; null when absent, written by another model version, or not finite (the script starts such a model afresh). */
export function decodeModel(packed: Buffer | null): Model | null {
  if (!packed || packed.length < 8) return null
  const version = packed.readDoubleLE(0)
  const scalars = version === MODEL_VERSION && packed.length === MODEL_BYTES ? MODEL_SCALARS.length : version === 7 && packed.length === V7_BYTES ? V7_SCALARS : 0
  if (scalars === 0) return null
  const model = { profile: [] as number[], hm: -1, hv: 0, hl: 0, hh: 0, he: 0, hb: 0 } as unknown as Model
  MODEL_SCALARS.slice(0, scalars).forEach((name, i) => {
    model[name] = packed.readDoubleLE(i * 8)
  })
  for (let i = 0; i < PROFILE_BUCKETS; i++) model.profile.push(packed.readFloatLE(scalars * 8 + i * 4))
  if (!MODEL_SCALARS.every((name) => Number.isFinite(model[name])) || !model.profile.every(Number.isFinite)) return null
  model.currentMinute = model.hm > 0 ? { minute: model.hm, last: model.hv, lo: model.hl, hi: model.hh, expected: model.he, band: model.hb } : null
  return model
}
