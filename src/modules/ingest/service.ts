import type { RedisClient } from '../../redis/client.js'
import { LRUCache } from 'lru-cache'
import type { Plan } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import type { ChangeContext } from '../../lib/context.js'
import { keys, TTL } from '../../redis/keys.js'
import { describeSeries, MAX_SAMPLE_MAGNITUDE, scoreServiceSamples, type SampleInput } from '../detection/detector.js'
import type { AppEvent, PublishEvents } from '../events/publisher.js'
import type { ServiceAnomaly } from '../detection/schemas.js'
import { kindOf, seriesIdOf, type DeclaredType, type Labels } from '../detection/series.js'
import type { AnomalySignal } from '../incidents/lifecycle.js'
import type { IncidentsService } from '../incidents/service.js'
import { METRIC_NAME_PATTERN, SERVICE_NAME_PATTERN } from '../services/schemas.js'
import type { ResolvedService, ServiceResolver } from '../services/resolver.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { suppressedUpTo } from '../suppression/matcher.js'
import type { RuleCache } from '../suppression/rule-cache.js'
import type { RejectionCode, Sample } from './schemas.js'
import type { MetricTypes, SeriesAdmission } from './series.js'


const SERVICE_NAME = new RegExp(SERVICE_NAME_PATTERN)
const METRIC_NAME = new RegExp(METRIC_NAME_PATTERN)
const MAX_FUTURE_MS = 5 * 60_000
/** At most this many anomaly.detected events per request; the reply and the window keep them all. */
const MAX_ANOMALY_EVENTS = 100
const QUOTA_FLUSH_MS = 100
/** A series' descriptor is sent with its samples at most this often per process (it is stored with the model). */
const DESCRIBED_MS = 30 * 60_000
const NO_LABELS: Labels = Object.freeze({}) as Labels
/** Series-id cache keys longer than this (large label sets) are not kept. */
const MAX_CACHED_ID_KEY = 512


interface Rejection {
  index: number
  code: RejectionCode
  detail: string
}

/** A series as one request sees it: what the script scores, and its place among the request's active-series members. */
interface SeriesOfSample {
  series: SampleInput['series']
  member: number
  labels: Labels
  /** its key in `described` */
  describedAs: string
}

interface Accepted {
  index: number
  service: string
  metric: string
  labels: Labels
  declared?: DeclaredType
  value: number
  time?: number
}

/** Per-sample checks that the JSON schema cannot express; a bad sample is rejected, the rest go on. */
function triage(samples: Sample[], now: number) {
  const rejected: Rejection[] = []
  const accepted: Accepted[] = []
  // Consecutive samples usually share their names (a remote_write series' samples always do): each name is
  // matched once per run of it.
  let validService: string | undefined
  let validMetric: string | undefined
  for (let index = 0; index < samples.length; index++) {
    const sample = samples[index]!
    const reject = (code: RejectionCode, detail: string) => rejected.push({ index, code, detail })
    if (!Number.isFinite(sample.value)) {
      reject('non_finite_value', 'value must be a finite number')
      continue
    }
    if (Math.abs(sample.value) > MAX_SAMPLE_MAGNITUDE) {
      reject('value_out_of_range', `value must be within ±${MAX_SAMPLE_MAGNITUDE}`)
      continue
    }
    if (sample.service !== validService) {
      if (!SERVICE_NAME.test(sample.service)) {
        reject('invalid_service_name', `service must match ${SERVICE_NAME_PATTERN}`)
        continue
      }
      validService = sample.service
    }
    if (sample.metric !== validMetric) {
      if (!METRIC_NAME.test(sample.metric)) {
        reject('invalid_metric_name', `metric must match ${METRIC_NAME_PATTERN}`)
        continue
      }
      validMetric = sample.metric
    }
    let time: number | undefined
    if (sample.timestamp !== undefined) {
      time = typeof sample.timestamp === 'number' ? sample.timestamp : Date.parse(sample.timestamp)
      if (!Number.isFinite(time) || time < 0) {
        reject('invalid_timestamp', 'timestamp is not a valid time')
        continue
      }
      if (time > now + MAX_FUTURE_MS) {
        reject('timestamp_in_future', 'timestamp is more than 5 minutes in the future')
        continue
      }
    }
    accepted.push({ index, service: sample.service, metric: sample.metric, labels: sample.labels ?? NO_LABELS, declared: sample.type, value: sample.value, time })
  }
  return { rejected, accepted }
}

export function createIngestService(deps: {
  redis: RedisClient
  resolver: ServiceResolver
  rules: RuleCache
  incidents: Pick<IncidentsService, 'correlate' | 'keepOpen'>
  admission: SeriesAdmission
  metricTypes: MetricTypes
  publish: PublishEvents
  clock: Clock
  onQuotaError: (err: unknown) => void
}) {
  /**
   * The organization's samples-per-minute allowance. Counts are summed in memory and flushed to Redis
   * every QUOTA_FLUSH_MS (one command per organization, not per request); once a total comes back over
   * the limit, this process refuses the organization's batches until the minute ends. The overshoot is
   * bounded by what arrives within one flush interval.
   */
  const exhausted = new LRUCache<string, number>({ max: 100_000, ttl: 60_000 })
  /** the organization's total for a minute as Redis last answered it (every process's samples) */
  const used = new LRUCache<string, { minute: number; total: number }>({ max: 100_000, ttl: 60_000 })
  let unflushed = new Map<string, { count: number; plan: Plan }>()
  /**
   * Takes `count` samples from the organization's allowance before any is scored, or refuses the whole
   * batch (429 until the minute ends) when they would not fit: nothing of a refused batch is learned, so
   * its retry is not counted twice.
   */
  function reserveQuota(organizationId: string, plan: Plan, count: number, now: number) {
    const minute = Math.floor(now / 60_000)
    const retryAfter = () => Math.max(1, Math.ceil(((minute + 1) * 60_000 - now) / 1000))
    if (exhausted.get(organizationId) === minute) throw errors.rateLimited(retryAfter())
    const known = used.get(organizationId)
    const total = (known?.minute === minute ? known.total : 0) + (unflushed.get(organizationId)?.count ?? 0)
    if (count > 0 && total + count > PLAN_LIMITS[plan].ingestPerMinute) throw errors.rateLimited(retryAfter())
    countQuota(organizationId, plan, count)
  }
  function countQuota(organizationId: string, plan: Plan, count: number) {
    const entry = unflushed.get(organizationId)
    if (entry) entry.count += count
    else unflushed.set(organizationId, { count, plan })
  }
  async function flushQuota() {
    if (unflushed.size === 0) return
    const batch = unflushed
    unflushed = new Map()
    const minute = Math.floor(deps.clock.now().getTime() / 60_000)
    await Promise.all(
      [...batch].map(async ([organizationId, { count, plan }]) => {
        const key = keys.ingestQuota(organizationId, minute)
        // One transaction, so the counter never exists without its TTL.
        const replies = await deps.redis.multi().incrby(key, count).expire(key, TTL.ingestQuotaSeconds).exec()
        const [err, total] = replies?.[0] ?? [new Error('the quota counter was not updated')]
        if (err) throw err
        used.set(organizationId, { minute, total: Number(total) })
        if (Number(total) >= PLAN_LIMITS[plan].ingestPerMinute) exhausted.set(organizationId, minute)
      })
    ).catch(deps.onQuotaError)
  }
  const flusher = setInterval(() => void flushQuota(), QUOTA_FLUSH_MS)
  flusher.unref()

  /**
   * Series ids repeat from request to request: kept by name and labels as sent (an agent sends a series'
   * labels in the same order every time; another order is only a miss, the id is the same). Only short
   * keys are kept, so the cache stays within about 100 MB whatever the labels' size.
   */
  const ids = new LRUCache<string, string>({ max: 200_000 })
  function seriesId(metric: string, labels: Labels): string {
    const key = labels === NO_LABELS ? metric : `${metric}\u0001${JSON.stringify(labels)}`
    if (key.length > MAX_CACHED_ID_KEY) return seriesIdOf(metric, labels)
    let id = ids.get(key)
    if (id === undefined) ids.set(key, (id = seriesIdOf(metric, labels)))
    return id
  }
  /** "<serviceId>:<seriesId>:<kind>" of the series whose descriptor this process stored lately (a new kind is described anew). */
  const described = new LRUCache<string, true>({ max: 500_000, ttl: DESCRIBED_MS })

  async function ingest(ctx: ChangeContext, plan: Plan, samples: Sample[]) {
    const now = deps.clock.now().getTime()
    const { rejected, accepted } = triage(samples, now)
    reserveQuota(ctx.organizationId, plan, accepted.length, now)
    try {
      const result = await ingestReserved(ctx, plan, samples, rejected, accepted, now)
      // Samples refused after the reservation (a plan limit) give their share back.
      const unused = accepted.length - result.accepted
      if (unused > 0) countQuota(ctx.organizationId, plan, -unused)
      return result
    } catch (err) {
      // Not taken (Redis or Postgres failed): the client retries, and is not charged twice.
      countQuota(ctx.organizationId, plan, -accepted.length)
      throw err
    }
  }

  async function ingestReserved(ctx: ChangeContext, plan: Plan, samples: Sample[], rejected: Rejection[], accepted: Accepted[], now: number) {
    const resolutions = await deps.resolver.resolve(ctx, [...new Set(accepted.map((s) => s.service))])
    const groups = new Map<string, { service: ResolvedService; samples: Accepted[] }>()
    for (const sample of accepted) {
      const resolution = resolutions.get(sample.service)!
      if ('rejected' in resolution) {
        rejected.push({ index: sample.index, code: resolution.rejected, detail: resolution.detail })
        continue
      }
      const group = groups.get(resolution.id) ?? { service: resolution, samples: [] }
      group.samples.push(sample)
      groups.set(resolution.id, group)
    }

    // Each sample's series (name + labels) and kind, worked out once per series of the request; histogram
    // buckets are taken but not scored.
    const types = groups.size > 0 ? await deps.metricTypes.typesOf(ctx.organizationId, now) : null
    const metadata = (family: string) => types!.get(family)
    let ignored = 0
    const members: string[] = []
    const seen = new Map<Labels, Map<string, SeriesOfSample | null>>()
    const seriesOfSample = (service: ResolvedService, sample: Accepted): SeriesOfSample | null => {
      // A label set is one series' own (remote_write) or one sample's (JSON); bare names are shared across services.
      const key = sample.labels === NO_LABELS ? `${service.id}\0${sample.metric}\0${sample.declared ?? ''}` : `${sample.metric}\0${sample.declared ?? ''}`
      let bySeries = seen.get(sample.labels)
      if (!bySeries) seen.set(sample.labels, (bySeries = new Map()))
      let found = bySeries.get(key)
      if (found !== undefined) return found
      const kind = kindOf(sample.metric, sample.declared, metadata, sample.value)
      if (kind === 'bucket') {
        found = null
      } else {
        const id = seriesId(sample.metric, sample.labels)
        const member = members.push(`${service.id}:${id}`) - 1
        const describedAs = `${members[member]}:${kind}`
        const descriptor = described.has(describedAs) ? null : describeSeries(sample.metric, sample.labels, kind)
        found = { series: { id, metric: sample.metric, kind, descriptor }, member, labels: sample.labels, describedAs }
      }
      bySeries.set(key, found)
      return found
    }
    const seriesGroups = [...groups.values()].map(({ service, samples: group }) => {
      const scoredSamples: { sample: Accepted; of: SeriesOfSample }[] = []
      for (const sample of group) {
        const of = seriesOfSample(service, sample)
        if (of) scoredSamples.push({ sample, of })
        else ignored++
      }
      return { service, samples: scoredSamples }
    })

    // The plan's active-series limit: samples of new series past it are refused before anything is learned.
    const limit = PLAN_LIMITS[plan].activeSeries
    const refused = members.length > 0 ? await deps.admission.admit(ctx.organizationId, members, limit, now) : new Set<number>()
    for (const group of seriesGroups) {
      if (refused.size === 0) break
      group.samples = group.samples.filter(({ sample, of }) => {
        if (!refused.has(of.member)) return true
        rejected.push({
          index: sample.index,
          code: 'series_limit',
          detail: `a new series past the ${plan} plan's ${limit} active series (series with a sample in the last hour); drop labels or series, or upgrade`
        })
        return false
      })
    }

    const rules = seriesGroups.length > 0 ? await deps.rules.rulesOf(ctx.organizationId) : []
    const scored = await Promise.all(
      seriesGroups
        .filter((group) => group.samples.length > 0)
        .map(async ({ service, samples: group }) => {
          const inputs: SampleInput[] = group.map(({ sample, of }) => ({
            series: of.series,
            value: sample.value,
            time: sample.time,
            suppressedUpTo: rules.length > 0 ? suppressedUpTo(rules, service.name, sample.metric, sample.time ?? now) : null
          }))
          const batch = await scoreServiceSamples(deps.redis, service.id, service.detection, inputs, now)
          const distinct = new Set(group.map(({ of }) => of))
          if (batch.undescribed > 0) {
            // New models whose descriptor this process thought stored: RedisClient lost its state. Describe them all again.
            const all = [...distinct].map((of) => [of.series.id, describeSeries(of.series.metric, of.labels, of.series.kind)])
            const key = keys.series(service.id)
            await deps.redis.multi().hset(key, Object.fromEntries(all)).pexpire(key, TTL.baselineMs).exec()
          }
          for (const of of distinct) {
            if (of.series.descriptor !== null || batch.undescribed > 0) described.set(of.describedAs, true)
          }
          return { service, samples: group, batch }
        })
    )

    let learning = 0
    let stale = 0
    const anomalies: ServiceAnomaly[] = []
    const correlations = []
    const ongoing: Promise<unknown>[] = []
    for (const { service, samples: group, batch } of scored) {
      learning += batch.learning
      stale += batch.stale
      // What pages: unsuppressed marks of confirmed episodes (listed starts and escalations, and confirmations).
      const paging: AnomalySignal[] = []
      for (const found of batch.anomalies) {
        const { sample, of } = group[found.index]!
        const anomaly: ServiceAnomaly = {
          kind: found.kind === 'escalation' ? 'escalation' : 'start',
          service: service.name,
          metric: sample.metric,
          series: of.series.id,
          labels: sample.labels,
          value: found.value,
          expected: found.expected,
          zScore: found.zScore,
          severity: found.severity,
          at: new Date(found.time).toISOString(),
          suppressed: found.suppressed,
          confirmed: found.pages
        }
        anomalies.push(anomaly)
        if (found.pages && !found.suppressed) paging.push({ ...anomaly, severity: found.pagingSeverity })
      }
      for (const found of batch.confirmed) {
        const { sample, of } = group[found.index]!
        if (!found.suppressed) paging.push({ metric: sample.metric, series: of.series.id, labels: sample.labels, severity: found.pagingSeverity, zScore: found.zScore })
      }
      const triggered =
        paging.some((a) => a.severity === 'critical') || batch.recentAnomalies >= service.detection.openAfterWarnings
      if (paging.length > 0) correlations.push(deps.incidents.correlate(ctx.organizationId, service, paging, triggered, ctx.requestId))
      // Confirmed episodes already reported that go on keep the service's open incident from going quiet.
      else if (batch.continuing > 0) ongoing.push(deps.incidents.keepOpen(service.id))
    }
    // The common case, nothing found, costs no further await.
    const settled = correlations.length > 0 ? (await Promise.all(correlations)).filter((c) => c !== null) : []
    if (ongoing.length > 0) await Promise.all(ongoing)
    if (anomalies.length > 0) {
      const events: AppEvent[] = anomalies.slice(0, MAX_ANOMALY_EVENTS).map((data) => ({ type: 'anomaly.detected', data }))
      for (const correlation of settled) events.push(...correlation.events)
      await deps.publish(ctx.organizationId, events)
    }

    rejected.sort((a, b) => a.index - b.index)
    return {
      accepted: samples.length - rejected.length,
      rejected,
      anomalies,
      incidents: settled.map(({ incident, created }) => ({
        id: incident.id,
        service: incident.service,
        status: incident.status,
        severity: incident.severity,
        created
      })),
      learning,
      stale,
      ignored
    }
  }

  async function close() {
    clearInterval(flusher)
    await flushQuota()
  }

  return { ingest, close }
}

export type IngestService = ReturnType<typeof createIngestService>
