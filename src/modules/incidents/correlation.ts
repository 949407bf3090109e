import { and, desc, eq, isNull, ne, sql } from 'drizzle-orm'
import type { Redis } from 'ioredis'
import type { Database } from '../../db/client.js'
import { incidents, type Severity } from '../../db/schema/index.js'
import type { Actor } from '../../lib/context.js'
import { keys, TTL } from '../../redis/keys.js'
import { recordAudit } from '../audit/repository.js'
import type { AppEvent } from '../events/publisher.js'
import type { ActionService } from '../actions/service.js'
import type { ResolvedService } from '../services/resolver.js'
import { presentIncident } from './repository.js'

export interface DetectedAnomaly {
  metric: string
  value: number
  expected: number
  zScore: number
  severity: Severity
  at: number
}

export interface Correlation {
  incident: ReturnType<typeof presentIncident>
  created: boolean
  events: AppEvent[]
}

/** What the correlator needs of remediation: runbooks propose actions when an incident opens or escalates. */
export interface RunbookHook {
  proposeFromRunbooks: ActionService['proposeFromRunbooks']
  settle: ActionService['settle']
}

/** The detector acts on its own behalf; the request id ties its changes to the ingestion that caused them. */
export const DETECTOR: Actor = { type: 'system', id: 'detector' }
const NO_OPEN_INCIDENT = 'none'
/**
 * "Nothing open" is kept briefly: a resolve's cache delete can land after a concurrent re-open wrote the
 * incident's id and before a slower request writes "none", and for as long as that stale "none" lives,
 * warnings that do not open an incident are not attached to the open one.
 */
const NO_OPEN_INCIDENT_SECONDS = 60

const maxSeverity = (a: Severity, b: Severity): Severity => (a === 'critical' || b === 'critical' ? 'critical' : 'warning')
const peakOf = (anomalies: DetectedAnomaly[], start: number | null) =>
  anomalies.reduce((peak, a) => (peak === null || Math.abs(a.zScore) > Math.abs(peak) ? a.zScore : peak), start)

/**
 * Folds a service's new unsuppressed anomalies into its one open incident, opening (or, when it flaps,
 * re-opening) one when the trigger is met. Postgres decides, under a per-service advisory lock, so
 * concurrent batches converge on a single incident; `incidents:{serviceId}` only spares the lookup when
 * the cache knows there is nothing open and nothing to open.
 */
export function createCorrelator(deps: { db: Database; redis: Redis; onCacheError: (err: unknown) => void; runbooks?: RunbookHook }) {
  async function cachedOpenIncident(serviceId: string) {
    return deps.redis.get(keys.openIncident(serviceId)).catch((err) => {
      deps.onCacheError(err)
      return null
    })
  }
  /** "Nothing open" never overwrites an id: a stale id only costs a Postgres lookup, a stale "none" would hide an incident. */
  async function remember(serviceId: string, incidentId: string | null) {
    const key = keys.openIncident(serviceId)
    const write = incidentId
      ? deps.redis.set(key, incidentId, 'EX', TTL.openIncidentSeconds)
      : deps.redis.set(key, NO_OPEN_INCIDENT, 'EX', NO_OPEN_INCIDENT_SECONDS, 'NX')
    await write.catch(deps.onCacheError)
  }

  async function correlate(
    organizationId: string,
    service: ResolvedService,
    anomalies: DetectedAnomaly[],
    triggered: boolean,
    requestId?: string
  ): Promise<Correlation | null> {
    if (anomalies.length === 0) return null
    if (!triggered && (await cachedOpenIncident(service.id)) === NO_OPEN_INCIDENT) return null

    const ctx = { organizationId, actor: DETECTOR, requestId }
    // Quiet periods run from when anomalies arrive, not from their sample times (which may be old), on
    // Postgres's clock: the auto-resolve sweep compares lastAnomalyAt with its now().
    const now = new Date()
    const severity = anomalies.map((a) => a.severity).reduce(maxSeverity)
    const metrics = [...new Set(anomalies.map((a) => a.metric))]

    const outcome = await deps.db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${service.id}, 0))`)
      const [open] = await tx
        .select()
        .from(incidents)
        .where(and(eq(incidents.serviceId, service.id), ne(incidents.status, 'resolved'), isNull(incidents.dedupKey)))
        .for('update')

      if (open) {
        const nextMetrics = [...new Set([...open.metrics, ...metrics])]
        const nextSeverity = maxSeverity(open.severity, severity)
        const [updated] = await tx
          .update(incidents)
          .set({
            metrics: nextMetrics,
            severity: nextSeverity,
            anomalyCount: open.anomalyCount + anomalies.length,
            peakZScore: peakOf(anomalies, open.peakZScore),
            lastAnomalyAt: sql`now()`,
            updatedAt: now
          })
          .where(eq(incidents.id, open.id))
          .returning()
        // Count and peak change with every anomaly; only a new metric or an escalation is worth an audit row.
        const material = nextSeverity !== open.severity || nextMetrics.length !== open.metrics.length
        if (material) {
          await recordAudit(tx, ctx, {
            action: nextSeverity !== open.severity ? 'incident.escalated' : 'incident.updated',
            resourceType: 'incident',
            resourceId: open.id,
            before: presentIncident({ ...open, service: service.name }),
            after: presentIncident({ ...updated!, service: service.name })
          })
        }
        const proposed = nextSeverity !== open.severity && deps.runbooks ? await deps.runbooks.proposeFromRunbooks(tx, ctx, updated!) : []
        return { row: updated!, created: false, event: material ? ('incident.updated' as const) : null, proposed }
      }
      if (!triggered) return null

      const title = `${metrics.join(', ')} anomalous on ${service.name}`
      const [recent] = await tx
        .select()
        .from(incidents)
        .where(and(eq(incidents.serviceId, service.id), eq(incidents.status, 'resolved'), isNull(incidents.dedupKey)))
        .orderBy(desc(incidents.resolvedAt))
        .limit(1)
      const flapWindowMs = 3 * service.detection.quietPeriodSeconds * 1000
      if (recent?.resolvedAt && now.getTime() - recent.resolvedAt.getTime() < flapWindowMs) {
        const [reopened] = await tx
          .update(incidents)
          .set({
            status: 'open',
            flapping: true,
            severity,
            metrics: [...new Set([...recent.metrics, ...metrics])],
            anomalyCount: recent.anomalyCount + anomalies.length,
            peakZScore: peakOf(anomalies, recent.peakZScore),
            lastAnomalyAt: sql`now()`,
            acknowledgedAt: null,
            acknowledgedBy: null,
            resolvedAt: null,
            resolvedBy: null,
            resolutionNote: null,
            updatedAt: now
          })
          .where(eq(incidents.id, recent.id))
          .returning()
        await recordAudit(tx, ctx, {
          action: 'incident.reopened',
          resourceType: 'incident',
          resourceId: recent.id,
          before: presentIncident({ ...recent, service: service.name }),
          after: presentIncident({ ...reopened!, service: service.name })
        })
        const proposed = deps.runbooks ? await deps.runbooks.proposeFromRunbooks(tx, ctx, reopened!) : []
        return { row: reopened!, created: false, event: 'incident.opened' as const, proposed }
      }

      const [opened] = await tx
        .insert(incidents)
        .values({
          organizationId,
          serviceId: service.id,
          title,
          severity,
          source: 'detector',
          metrics,
          anomalyCount: anomalies.length,
          peakZScore: peakOf(anomalies, null),
          openedAt: now,
          lastAnomalyAt: sql`now()`
        })
        .returning()
      await recordAudit(tx, ctx, {
        action: 'incident.opened',
        resourceType: 'incident',
        resourceId: opened!.id,
        after: presentIncident({ ...opened!, service: service.name })
      })
      const proposed = deps.runbooks ? await deps.runbooks.proposeFromRunbooks(tx, ctx, opened!) : []
      return { row: opened!, created: true, event: 'incident.opened' as const, proposed }
    })

    await remember(service.id, outcome?.row.id ?? null)
    if (!outcome) return null
    if (outcome.proposed.length > 0) await deps.runbooks!.settle(outcome.proposed)
    const incident = presentIncident({ ...outcome.row, service: service.name })
    return {
      incident,
      created: outcome.created,
      events: outcome.event ? [{ type: outcome.event, data: incident }] : []
    }
  }

  /** After an incident of the service is resolved by any path: the next anomaly looks in Postgres again. */
  async function forgetOpenIncident(serviceId: string) {
    await deps.redis.del(keys.openIncident(serviceId)).catch(deps.onCacheError)
  }

  return { correlate, forgetOpenIncident }
}
export type Correlator = ReturnType<typeof createCorrelator>
