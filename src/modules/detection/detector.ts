import type { Redis } from 'ioredis'
import type { DetectionConfig, Severity } from '../../db/schema/index.js'
import { keys, TTL } from '../../redis/keys.js'
import '../../redis/scripts.js'

/** Exponential weight of a new sample once the series is past its first 1/alpha samples. */
export const BASELINE_ALPHA = 0.05

export interface SampleInput {
  metric: string
  value: number
  /** epoch ms; undefined = the Redis server's clock at scoring time (monotonic per series) */
  time?: number
  /** severities up to this one are suppressed by a matching rule */
  suppressedUpTo: Severity | null
}

export interface ScoredSample {
  state: 'learning' | 'scored' | 'stale'
  zScore: number | null
  expected: number | null
  severity: Severity | null
  suppressed: boolean
  time: number
}

export interface ScoredBatch {
  results: ScoredSample[]
  /** unsuppressed anomalies of the service within the warning window, this batch included */
  recentAnomalies: number
}

const SEVERITY_RANK: Record<Severity, number> = { warning: 1, critical: 2 }
const SEVERITY_OF = [null, 'warning', 'critical'] as const

interface ScriptResult {
  r: { st: ScoredSample['state']; z: number | null; e: number | null; sev: 0 | 1 | 2; sup: 0 | 1; t: number }[]
  recent: number
}

/** Runs the scoring script for the samples of one service (one round trip, atomic per service). */
export async function scoreServiceBatch(
  redis: Redis,
  serviceId: string,
  detection: DetectionConfig,
  samples: SampleInput[]
): Promise<ScoredBatch> {
  const metricKeys = new Map<string, number>()
  const baselineKeys: string[] = []
  for (const sample of samples) {
    if (!metricKeys.has(sample.metric)) {
      metricKeys.set(sample.metric, baselineKeys.length + 3)
      baselineKeys.push(keys.baseline(serviceId, sample.metric))
    }
  }
  const payload = {
    minSamples: detection.minSamples,
    alpha: BASELINE_ALPHA,
    windowMs: TTL.anomalyWindowMs,
    triggerWindowMs: detection.warningWindowSeconds * 1000,
    baselineTtlMs: TTL.baselineMs,
    samples: samples.map((s) => {
      const metric = detection.metrics[s.metric]
      return {
        k: metricKeys.get(s.metric)!,
        m: s.metric,
        v: s.value,
        t: s.time ?? -1,
        z: metric?.zThreshold ?? detection.zThreshold,
        d: metric?.direction ?? 'both',
        s: s.suppressedUpTo ? SEVERITY_RANK[s.suppressedUpTo] : 0
      }
    })
  }
  const allKeys = [keys.recentAnomalies(serviceId), keys.baselineIndex(serviceId), ...baselineKeys]
  const raw = await redis.scoreSamples(allKeys.length, ...allKeys, JSON.stringify(payload))
  const parsed = JSON.parse(raw) as ScriptResult
  // cjson encodes an empty Lua table as {}; a batch always has samples, so r is an array here.
  return {
    results: parsed.r.map((r) => ({
      state: r.st,
      zScore: r.z,
      expected: r.e,
      severity: SEVERITY_OF[r.sev],
      suppressed: r.sup === 1,
      time: r.t
    })),
    recentAnomalies: parsed.recent
  }
}
