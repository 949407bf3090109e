import type { Redis } from 'ioredis'
import type { DetectionConfig } from '../../db/schema/index.js'
import { keys, TTL } from '../../redis/keys.js'
import { decodeModel, liveKeys, type ModelKeys } from './detector.js'
import type { Anomaly } from './schemas.js'

/** Decodes a member of `recent_anomalies:{serviceId}` as written by the scoring script. */
export function decodeAnomaly(member: string): Anomaly {
  const body = JSON.parse(member.slice(2)) as { m: string; v: number; e: number; z: number; sev: 1 | 2; t: number; k?: 1 | 2 }
  return {
    kind: body.k === 2 ? 'escalation' : 'start',
    metric: body.m,
    value: body.v,
    expected: body.e,
    zScore: body.z,
    severity: body.sev === 2 ? 'critical' : 'warning',
    at: new Date(body.t).toISOString(),
    suppressed: member.startsWith('s|')
  }
}

/** Anomalies of a service since `since` (never more than the 1h window), newest first. */
export async function recentAnomalies(redis: Redis, serviceId: string, since: number, offset = 0, limit = 1000) {
  const from = Math.max(since, Date.now() - TTL.anomalyWindowMs)
  const members = (await redis.zrevrangebyscore(keys.recentAnomalies(serviceId), '+inf', from, 'LIMIT', offset, limit)) as string[]
  return members.map(decodeAnomaly)
}

export interface BaselineView {
  metric: string
  /** the level the next sample is expected around (without the seasonal part) */
  mean: number
  /** the spread deviations are measured in (σ-equivalent) */
  stddev: number
  samples: number
  state: 'learning' | 'ready'
  /** whether the series is scored against its learned daily/weekly shape */
  seasonal: boolean
  /** the ongoing anomaly episode, if any */
  episode: { startedAt: string; lastAt: string; peakZScore: number; severity: 'warning' | 'critical' } | null
  updatedAt: string
}

export async function baselinesOf(redis: Redis, serviceId: string, detection: Pick<DetectionConfig, 'minSamples' | 'minSpanSeconds' | 'seasonality'>, space: ModelKeys = liveKeys(serviceId)): Promise<BaselineView[]> {
  const metrics = (await redis.smembers(space.index)).sort()
  if (metrics.length === 0) return []
  const pipeline = redis.pipeline()
  for (const metric of metrics) pipeline.getBuffer(space.model(metric))
  const replies = (await pipeline.exec()) ?? []
  const out: BaselineView[] = []
  replies.forEach(([err, value], i) => {
    const model = err ? null : decodeModel(value as Buffer | null)
    if (!model) return // expired since it was indexed, or written by another model version
    const ready = model.n >= detection.minSamples && model.last - model.t0 >= detection.minSpanSeconds * 1000
    // The floors the scoring script applies: 0.2% of the level, the smallest step, 1 for an integer series.
    const floor = Math.max(model.st > 0 ? model.st : 0, model.iv === 1 ? 1 : 0, 1e-9)
    const plain = Math.max(model.sp * 1.2533, model.qp / 2.5758, Math.abs(model.m) * 0.002, floor)
    const seasonalScale = Math.max(model.ss * 1.2533, model.qs / 2.5758, floor)
    const seasonal =
      detection.seasonality !== 'none' && model.last - model.t0 >= 86_400_000 && (detection.seasonality !== 'auto' || seasonalScale < 0.8 * plain)
    out.push({
      metric: metrics[i]!,
      mean: model.m,
      stddev: seasonal ? seasonalScale : plain,
      samples: model.n,
      state: ready ? 'ready' : 'learning',
      seasonal,
      episode:
        model.ep === 1
          ? { startedAt: new Date(model.eb).toISOString(), lastAt: new Date(model.el).toISOString(), peakZScore: model.ez, severity: model.es === 2 ? 'critical' : 'warning' }
          : null,
      updatedAt: new Date(model.at).toISOString()
    })
  })
  return out
}
