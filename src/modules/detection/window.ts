import type { RedisClient } from '../../redis/client.js'
import type { DetectionConfig } from '../../db/schema/index.js'
import { keys, TTL } from '../../redis/keys.js'
import { decodeModel, liveKeys, type ModelKeys, type SeriesDescriptor } from './detector.js'
import type { Anomaly } from './schemas.js'
import type { Labels, SeriesKind } from './series.js'

/** Decodes a member of `recent_anomalies:{serviceId}` as written by the scoring script (labels are the caller's to fill). */
function decodeAnomaly(member: string): Anomaly {
  const body = JSON.parse(member.slice(2)) as { s?: string; m: string; v: number; e: number; z: number; sev: 1 | 2; t: number; k?: 1 | 2; c?: 0 | 1 }
  return {
    kind: body.k === 2 ? 'escalation' : 'start',
    metric: body.m,
    // (Members written before series had ids carry none: their series reads as '' without labels.)
    series: body.s ?? '',
    labels: {},
    value: body.v,
    expected: body.e,
    zScore: body.z,
    severity: body.sev === 2 ? 'critical' : 'warning',
    at: new Date(body.t).toISOString(),
    suppressed: member.startsWith('s|'),
    confirmed: body.c === 1
  }
}

/** The descriptors of some of a service's series (labels, metric, kind); absent ids are left out. */
async function descriptorsOf(redis: RedisClient, space: ModelKeys, ids: string[]): Promise<Map<string, SeriesDescriptor>> {
  if (ids.length === 0) return new Map()
  const values = await redis.hmget(space.series, ...ids)
  const found = new Map<string, SeriesDescriptor>()
  values.forEach((value, i) => {
    if (value) found.set(ids[i]!, JSON.parse(value) as SeriesDescriptor)
  })
  return found
}

/** Anomalies of a service since `since` (never more than the 1h window), newest first. */
export async function recentAnomalies(redis: RedisClient, serviceId: string, since: number, offset = 0, limit = 1000) {
  const from = Math.max(since, Date.now() - TTL.anomalyWindowMs)
  const members = (await redis.zrevrangebyscore(keys.recentAnomalies(serviceId), '+inf', from, 'LIMIT', offset, limit)) as string[]
  const anomalies = members.map(decodeAnomaly)
  const ids = [...new Set(anomalies.map((a) => a.series).filter((id) => id !== ''))]
  const descriptors = await descriptorsOf(redis, liveKeys(serviceId), ids)
  for (const anomaly of anomalies) anomaly.labels = descriptors.get(anomaly.series)?.l ?? {}
  return anomalies
}

export interface BaselineView {
  metric: string
  /** the series' stable id */
  series: string
  labels: Labels
  /** how the series is read: a gauge, a counter (scored on its rate), a time-like gauge (never alerted) */
  kind: SeriesKind
  /** the level the next sample is expected around (without the seasonal part) */
  mean: number
  /** the spread deviations are measured in (σ-equivalent) */
  stddev: number
  samples: number
  state: 'learning' | 'ready'
  /** whether the series is scored against its learned daily/weekly shape */
  seasonal: boolean
  /** the ongoing anomaly episode, if any */
  episode: { startedAt: string; lastAt: string; peakZScore: number; severity: 'warning' | 'critical'; confirmed: boolean } | null
  updatedAt: string
}

/** The kinds as the scoring script codes them in a model. */
const MODEL_KINDS: SeriesKind[] = ['gauge', 'counter', 'time']

export interface BaselineQuery {
  /** only these metrics' series */
  metrics?: string[]
  /** where the previous page ended (a Redis HSCAN cursor); absent: from the start */
  cursor?: string
  /** about this many series per page */
  limit?: number
}

/** Descriptors read per page at most, whatever the filter (a page of one metric among many may come back short). */
const MAX_SCANNED_PER_PAGE = 10_000

/**
 * A page of the service's baselines, one per series, in the order Redis scans them (each page sorted by
 * metric, then labels); `nextCursor` is null once the scan is complete. The index is walked with HSCAN, so a
 * page costs about its own size whatever the number of series. Descriptors whose model is gone (expired)
 * are dropped from the index as they are met.
 */
export async function baselinesOf(
  redis: RedisClient,
  serviceId: string,
  detection: Pick<DetectionConfig, 'minSamples' | 'minSpanSeconds' | 'seasonality'>,
  query: BaselineQuery = {},
  space: ModelKeys = liveKeys(serviceId)
): Promise<{ items: BaselineView[]; nextCursor: string | null }> {
  const wanted = query.metrics ? new Set(query.metrics) : null
  const limit = query.limit ?? 1000
  let cursor = query.cursor ?? '0'
  let scanned = 0
  const page: { id: string; descriptor: SeriesDescriptor; order: string }[] = []
  do {
    const [next, flat] = await redis.hscan(space.series, cursor, 'COUNT', limit)
    cursor = next
    scanned += flat.length / 2
    for (let i = 0; i < flat.length; i += 2) {
      const descriptor = JSON.parse(flat[i + 1]!) as SeriesDescriptor
      if (wanted && !wanted.has(descriptor.m)) continue
      page.push({ id: flat[i]!, descriptor, order: `${descriptor.m}\0${JSON.stringify(Object.entries(descriptor.l).sort())}\0${flat[i]}` })
    }
  } while (cursor !== '0' && page.length < limit && scanned < MAX_SCANNED_PER_PAGE)
  const nextCursor = cursor === '0' ? null : cursor
  if (page.length === 0) return { items: [], nextCursor }
  page.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0))
  const replies = await redis.mgetBuffer(...page.map(({ id }) => space.model(id)))
  const items: BaselineView[] = []
  const gone: string[] = []
  replies.forEach((value, i) => {
    const { id, descriptor } = page[i]!
    if (!value) gone.push(id)
    const model = decodeModel(value)
    if (!model || model.n === 0) return // expired, written by another model version, or a counter without a rate yet
    const ready = model.n >= detection.minSamples && model.last - model.t0 >= detection.minSpanSeconds * 1000
    // The floors the scoring script applies: 0.2% of the level, the smallest step, 1 for an integer series.
    const floor = Math.max(model.st > 0 ? model.st : 0, model.iv === 1 ? 1 : 0, 1e-9)
    const plain = Math.max(model.sp * 1.2533, model.qp / 2.5758, Math.abs(model.m) * 0.002, floor)
    const seasonalScale = Math.max(model.ss * 1.2533, model.qs / 2.5758, floor)
    const seasonal =
      detection.seasonality !== 'none' && model.last - model.t0 >= 86_400_000 && (detection.seasonality !== 'auto' || seasonalScale < 0.8 * plain)
    items.push({
      metric: descriptor.m,
      series: id,
      labels: descriptor.l,
      kind: MODEL_KINDS[model.k] ?? descriptor.k,
      mean: model.m,
      stddev: seasonal ? seasonalScale : plain,
      samples: model.n,
      state: ready ? 'ready' : 'learning',
      seasonal,
      episode:
        model.ep === 1
          ? {
              startedAt: new Date(model.eb).toISOString(),
              lastAt: new Date(model.el).toISOString(),
              peakZScore: model.ez,
              severity: model.es === 2 ? 'critical' : 'warning',
              confirmed: model.ef === 1
            }
          : null,
      updatedAt: new Date(model.at).toISOString()
    })
  })
  if (gone.length > 0) await redis.forgetSeries(gone.length + 1, space.series, ...gone.map((id) => space.model(id)), ...gone)
  return { items, nextCursor }
}

/** Every baseline of the given metrics, page after page, up to `max` series. */
export async function allBaselinesOf(
  redis: RedisClient,
  serviceId: string,
  detection: Pick<DetectionConfig, 'minSamples' | 'minSpanSeconds' | 'seasonality'>,
  metrics: string[],
  max = 10_000
): Promise<BaselineView[]> {
  const out: BaselineView[] = []
  let cursor: string | undefined
  do {
    const page = await baselinesOf(redis, serviceId, detection, { metrics, cursor })
    out.push(...page.items)
    cursor = page.nextCursor ?? undefined
  } while (cursor !== undefined && out.length < max)
  return out
}
