import type { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import type { Plan } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import type { ChangeContext } from '../../lib/context.js'
import { keys, TTL } from '../../redis/keys.js'
import { describeSeries, scoreServiceBatch, type SampleInput } from '../detection/detector.js'
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


interface Rejection {
  index: number
  code: RejectionCode
  detail: string
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
  samples.forEach((sample, index) => {
    const reject = (code: RejectionCode, detail: string) => rejected.push({ index, code, detail })
    if (!Number.isFinite(sample.value)) return reject('non_finite_value', 'value must be a finite number')
    if (!SERVICE_NAME.test(sample.service)) return reject('invalid_service_name', `service must match ${SERVICE_NAME_PATTERN}`)
    if (!METRIC_NAME.test(sample.metric)) return reject('invalid_metric_name', `metric must match ${METRIC_NAME_PATTERN}`)
    let time: number | undefined
    if (sample.timestamp !== undefined) {
      time = typeof sample.timestamp === 'number' ? sample.timestamp : Date.parse(sample.timestamp)
      if (!Number.isFinite(time) || time < 0) return reject('invalid_timestamp', 'timestamp is not a valid time')
      if (time > now + MAX_FUTURE_MS) return reject('timestamp_in_future', 'timestamp is more than 5 minutes in the future')
    }
    accepted.push({ index, service: sample.service, metric: sample.metric, labels: sample.labels ?? NO_LABELS, declared: sample.type, value: sample.value, time })
  })
  return { rejected, accepted }
}

export function createIngestService(deps: {
  redis: Redis
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
  let unflushed = new Map<string, { count: number; plan: Plan }>()
  function checkQuota(organizationId: string, now: number) {
    const minute = Math.floor(now / 60_000)
    if (exhausted.get(organizationId) === minute) {
      throw errors.rateLimited(Math.max(1, Math.ceil(((minute + 1) * 60_000 - now) / 1000)))
    }
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
        const [err, used] = replies?.[0] ?? [new Error('the quota counter was not updated')]
        if (err) throw err
        if (Number(used) >= PLAN_LIMITS[plan].ingestPerMinute) exhausted.set(organizationId, minute)
      })
    ).catch(deps.onQuotaError)
  }
  const flusher = setInterval(() => void flushQuota(), QUOTA_FLUSH_MS)
  flusher.unref()

  /** Series ids: label sets are usually shared by a remote_write series' samples; bare names repeat. */
  const idsByLabels = new WeakMap<Labels, Map<string, string>>()
  const bareIds = new LRUCache<string, string>({ max: 100_000 })
  function seriesId(metric: string, labels: Labels): string {
    if (labels === NO_LABELS) {
      let id = bareIds.get(metric)
      if (id === undefined) bareIds.set(metric, (id = seriesIdOf(metric, labels)))
      return id
    }
    let byMetric = idsByLabels.get(labels)
    if (!byMetric) idsByLabels.set(labels, (byMetric = new Map()))
    let id = byMetric.get(metric)
    if (id === undefined) byMetric.set(metric, (id = seriesIdOf(metric, labels)))
    return id
  }
  /** "<serviceId>:<seriesId>:<kind>" of the series whose descriptor this process stored lately (a new kind is described anew). */
  const described = new LRUCache<string, true>({ max: 500_000, ttl: DESCRIBED_MS })

  async function ingest(ctx: ChangeContext, plan: Plan, samples: Sample[]) {
    const now = deps.clock.now().getTime()
    const { rejected, accepted } = triage(samples, now)
    checkQuota(ctx.organizationId, now)

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

    // Each sample's series (name + labels) and kind; histogram buckets are taken but not scored.
    const types = groups.size > 0 ? await deps.metricTypes.typesOf(ctx.organizationId, now) : null
    let ignored = 0
    const members: string[] = []
    const memberIndex = new Map<string, number>()
    const seriesGroups = [...groups.values()].map(({ service, samples: group }) => {
      const scoredSamples: (Accepted & { series: SampleInput['series']; member: number })[] = []
      for (const sample of group) {
        const kind = kindOf(sample.metric, sample.declared, (family) => types!.get(family))
        if (kind === 'bucket') {
          ignored++
          continue
        }
        const id = seriesId(sample.metric, sample.labels)
        const member = `${service.id}:${id}`
        let position = memberIndex.get(member)
        if (position === undefined) memberIndex.set(member, (position = members.push(member) - 1))
        const descriptor = described.has(`${member}:${kind}`) ? null : describeSeries(sample.metric, sample.labels, kind)
        scoredSamples.push({ ...sample, series: { id, metric: sample.metric, kind, descriptor }, member: position })
      }
      return { service, samples: scoredSamples }
    })

    // The plan's active-series limit: samples of new series past it are refused before anything is learned.
    const limit = PLAN_LIMITS[plan].activeSeries
    const refused = members.length > 0 ? await deps.admission.admit(ctx.organizationId, members, limit, now) : new Set<number>()
    for (const group of seriesGroups) {
      if (refused.size === 0) break
      group.samples = group.samples.filter((sample) => {
        if (!refused.has(sample.member)) return true
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
          const inputs: SampleInput[] = group.map((s) => ({
            series: s.series,
            value: s.value,
            time: s.time,
            suppressedUpTo: rules.length > 0 ? suppressedUpTo(rules, service.name, s.metric, s.time ?? now) : null
          }))
          const batch = await scoreServiceBatch(deps.redis, service.id, service.detection, inputs, now)
          if (batch.undescribed > 0) {
            // New models whose descriptor this process thought stored: Redis lost its state. Describe them all again.
            const all = new Map(group.map((s) => [s.series.id, describeSeries(s.metric, s.labels, s.series.kind)]))
            const key = keys.series(service.id)
            await deps.redis.multi().hset(key, Object.fromEntries(all)).pexpire(key, TTL.baselineMs).exec()
          }
          for (const sample of group) described.set(`${members[sample.member]!}:${sample.series.kind}`, true)
          return { service, samples: group, batch }
        })
    )
    const taken = samples.length - rejected.length
    if (taken > 0) countQuota(ctx.organizationId, plan, taken)

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
        const sample = group[found.index]!
        const anomaly: ServiceAnomaly = {
          kind: found.kind === 'escalation' ? 'escalation' : 'start',
          service: service.name,
          metric: sample.metric,
          series: sample.series.id,
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
        const sample = group[found.index]!
        if (!found.suppressed) paging.push({ metric: sample.metric, series: sample.series.id, labels: sample.labels, severity: found.pagingSeverity, zScore: found.zScore })
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
