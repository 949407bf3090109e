import type { Redis } from 'ioredis'
import { keys, TTL } from '../../redis/keys.js'
import type { Anomaly } from './schemas.js'

/** Decodes a member of `recent_anomalies:{serviceId}` as written by the scoring script. */
export function decodeAnomaly(member: string): Anomaly {
  const body = JSON.parse(member.slice(2)) as { m: string; v: number; e: number; z: number; sev: 1 | 2; t: number }
  return {
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
  mean: number
  stddev: number
  samples: number
  state: 'learning' | 'ready'
  updatedAt: string
}

export async function baselinesOf(redis: Redis, serviceId: string, minSamples: number): Promise<BaselineView[]> {
  const metrics = (await redis.smembers(keys.baselineIndex(serviceId))).sort()
  if (metrics.length === 0) return []
  const pipeline = redis.pipeline()
  for (const metric of metrics) pipeline.hmget(keys.baseline(serviceId, metric), 'n', 'mean', 'var', 'at')
  const replies = (await pipeline.exec()) ?? []
  const out: BaselineView[] = []
  replies.forEach(([err, value], i) => {
    const [n, mean, variance, at] = (value ?? []) as (string | null)[]
    if (err || !n) return // expired since it was indexed
    out.push({
      metric: metrics[i]!,
      mean: Number(mean),
      stddev: Math.sqrt(Math.max(0, Number(variance))),
      samples: Number(n),
      state: Number(n) >= minSamples ? 'ready' : 'learning',
      updatedAt: new Date(Number(at)).toISOString()
    })
  })
  return out
}
