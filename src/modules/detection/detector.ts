import type { Redis } from 'ioredis'
import type { DetectionConfig, Severity } from '../../db/schema/index.js'
import { keys, TTL } from '../../redis/keys.js'
import '../../redis/scripts.js'

/** Exponential weight of a new sample once the series is past its first 1/alpha samples. */
export const BASELINE_ALPHA = 0.05

export interface SampleInput {
  metric: string
  value: number
  /** epoch ms; undefined = arrival time (never older than its series, so concurrent callers all count) */
  time?: number
  /** severities up to this one are suppressed by a matching rule */
  suppressedUpTo: Severity | null
}

export interface DetectedSampleAnomaly {
  /** position of the sample in the batch */
  index: number
  zScore: number
  expected: number
  severity: Severity
  suppressed: boolean
  time: number
}

export interface ScoredBatch {
  /** samples that fed a baseline still below minSamples */
  learning: number
  /** samples older than their series: kept for the record, not learned */
  stale: number
  anomalies: DetectedSampleAnomaly[]
  /** unsuppressed anomalies of the service within the warning window, this batch included */
  recentAnomalies: number
}

const SEVERITY_RANK: Record<Severity, number> = { warning: 1, critical: 2 }
const DIRECTION_CODE = { up: 'u', down: 'd', both: 'b' } as const
const FIELDS_PER_ANOMALY = 6

/** Runs the scoring script for the samples of one service (one round trip, atomic per service). */
export async function scoreServiceBatch(
  redis: Redis,
  serviceId: string,
  detection: DetectionConfig,
  samples: SampleInput[],
  now = Date.now()
): Promise<ScoredBatch> {
  const keyIndex = new Map<string, number>()
  const scriptKeys = [keys.recentAnomalies(serviceId), keys.baselineIndex(serviceId)]
  let seriesSpec = ''
  let sampleSpec = ''
  for (const sample of samples) {
    let index = keyIndex.get(sample.metric)
    if (index === undefined) {
      index = scriptKeys.length + 1
      keyIndex.set(sample.metric, index)
      scriptKeys.push(keys.baseline(serviceId, sample.metric))
      const metric = detection.metrics[sample.metric]
      seriesSpec += `${sample.metric} ${metric?.zThreshold ?? detection.zThreshold} ${DIRECTION_CODE[metric?.direction ?? 'both']};`
    }
    sampleSpec += `${index} ${sample.value} ${sample.time ?? -1} ${sample.suppressedUpTo ? SEVERITY_RANK[sample.suppressedUpTo] : 0};`
  }
  const reply = (await redis.scoreSamples(
    scriptKeys.length,
    ...scriptKeys,
    `${detection.minSamples} ${BASELINE_ALPHA} ${TTL.anomalyWindowMs} ${detection.warningWindowSeconds * 1000} ${TTL.baselineMs} ${now}`,
    seriesSpec,
    sampleSpec
  )) as (string | number)[]
  const anomalies: DetectedSampleAnomaly[] = []
  for (let i = 3; i < reply.length; i += FIELDS_PER_ANOMALY) {
    anomalies.push({
      index: Number(reply[i]) - 1,
      zScore: Number(reply[i + 1]),
      expected: Number(reply[i + 2]),
      severity: reply[i + 3] === 2 ? 'critical' : 'warning',
      suppressed: reply[i + 4] === 1,
      time: Number(reply[i + 5])
    })
  }
  return { learning: Number(reply[1]), stale: Number(reply[2]), anomalies, recentAnomalies: Number(reply[0]) }
}
