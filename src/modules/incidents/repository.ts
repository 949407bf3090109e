import { and, desc, eq, getTableColumns, isNotNull, isNull, ne, or, sql, type SQL } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { keysetPage, type PageRequest } from '../../db/keyset.js'
import { actions, incidents, services, type IncidentStatus, type Severity } from '../../db/schema/index.js'
import type { ChangeContext } from '../../lib/context.js'
import { iso } from '../../lib/schemas.js'
import { recordAudit } from '../audit/repository.js'
import type { IncidentAudit, IncidentChange } from './lifecycle.js'

const withServiceName = { ...getTableColumns(incidents), service: services.name }
export type IncidentView = typeof incidents.$inferSelect & { service: string }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface IncidentFilter {
  status?: IncidentStatus
  service?: string
  severity?: Severity
  flapping?: boolean
}

export function listIncidents(exec: Executor, organizationId: string, filter: IncidentFilter, page: PageRequest): Promise<IncidentView[]> {
  const query = exec.select(withServiceName).from(incidents).innerJoin(services, eq(services.id, incidents.serviceId)).$dynamic()
  const where: (SQL | undefined)[] = [eq(incidents.organizationId, organizationId)]
  if (filter.status) where.push(eq(incidents.status, filter.status))
  if (filter.severity) where.push(eq(incidents.severity, filter.severity))
  if (filter.flapping !== undefined) where.push(eq(incidents.flapping, filter.flapping))
  if (filter.service) {
    where.push(
      UUID.test(filter.service)
        ? or(eq(incidents.serviceId, filter.service), eq(services.name, filter.service))
        : eq(services.name, filter.service)
    )
  }
  return keysetPage(query, incidents.id, where, page)
}

export function findIncident(exec: Executor, organizationId: string, id: string): Promise<IncidentView | undefined> {
  return exec
    .select(withServiceName)
    .from(incidents)
    .innerJoin(services, eq(services.id, incidents.serviceId))
    .where(and(eq(incidents.organizationId, organizationId), eq(incidents.id, id)))
    .then((rows) => rows[0])
}

export type IncidentRow = typeof incidents.$inferSelect

const openOfService = (serviceId: string) =>
  and(eq(incidents.serviceId, serviceId), ne(incidents.status, 'resolved'), isNull(incidents.dedupKey))

/**
 * Serializes the transactions that may open an incident for one service (or one alert dedup key) until
 * commit: a row lock cannot, since the incident to lock may not exist yet.
 */
export async function serializeCorrelation(tx: Executor, key: string): Promise<void> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${key}, 0))`)
}

/** The service's open detector incident with its service's name, locked for the transaction. */
export function lockOpenIncidentOfService(tx: Executor, serviceId: string): Promise<IncidentView | undefined> {
  return tx
    .select(withServiceName)
    .from(incidents)
    .innerJoin(services, eq(services.id, incidents.serviceId))
    .where(openOfService(serviceId))
    .for('update', { of: incidents })
    .then((rows) => rows[0])
}

/** The service's most recently resolved detector incident (the one a flap would re-open). */
export function lastResolvedIncidentOfService(tx: Executor, serviceId: string): Promise<IncidentView | undefined> {
  return tx
    .select(withServiceName)
    .from(incidents)
    .innerJoin(services, eq(services.id, incidents.serviceId))
    .where(and(eq(incidents.serviceId, serviceId), eq(incidents.status, 'resolved'), isNull(incidents.dedupKey)))
    .orderBy(desc(incidents.resolvedAt))
    .limit(1)
    .then((rows) => rows[0])
}

/** The organization's open incident with an alert's dedup key, with its own service's name, locked for the transaction. */
export function lockOpenIncidentByDedupKey(tx: Executor, organizationId: string, dedupKey: string): Promise<IncidentView | undefined> {
  return tx
    .select(withServiceName)
    .from(incidents)
    .innerJoin(services, eq(services.id, incidents.serviceId))
    .where(and(eq(incidents.organizationId, organizationId), eq(incidents.dedupKey, dedupKey), ne(incidents.status, 'resolved')))
    .for('update', { of: incidents })
    .then((rows) => rows[0])
}

/** An incident with its service's name, locked for the transaction; undefined across tenants. */
export function lockIncident(tx: Executor, organizationId: string, id: string): Promise<IncidentView | undefined> {
  return tx
    .select(withServiceName)
    .from(incidents)
    .innerJoin(services, eq(services.id, incidents.serviceId))
    .where(and(eq(incidents.organizationId, organizationId), eq(incidents.id, id)))
    .for('update', { of: incidents })
    .then((rows) => rows[0])
}

/**
 * Detector incidents whose service has had no anomaly for its quiet period (on Postgres's clock, which
 * stamps lastAnomalyAt), locked; rows another transaction holds are skipped until the next sweep.
 */
export function lockQuietIncidents(tx: Executor, limit: number): Promise<IncidentView[]> {
  return tx
    .select(withServiceName)
    .from(incidents)
    .innerJoin(services, eq(services.id, incidents.serviceId))
    .where(
      and(
        ne(incidents.status, 'resolved'),
        eq(incidents.source, 'detector'),
        isNotNull(incidents.lastAnomalyAt),
        sql`${incidents.lastAnomalyAt} < now() - make_interval(secs => COALESCE((${services.detection}->>'quietPeriodSeconds')::int, 600))`
      )
    )
    .orderBy(incidents.lastAnomalyAt)
    .limit(limit)
    .for('update', { of: incidents, skipLocked: true })
}

/** lastAnomalyAt is stamped with Postgres's clock: the quiet-period sweep compares it with Postgres's now(). */
const stamped = <T extends { lastAnomalyAt?: Date | null }>(values: T) =>
  values.lastAnomalyAt ? { ...values, lastAnomalyAt: sql`now()` } : values

/** Inserts a new incident and its `incident.opened` audit row. */
export async function insertIncident(
  tx: Executor,
  ctx: ChangeContext,
  values: typeof incidents.$inferInsert,
  serviceName: string,
  audit: IncidentAudit | null
): Promise<IncidentView> {
  const [row] = await tx.insert(incidents).values(stamped(values)).returning()
  const view = { ...row!, service: serviceName }
  if (audit) await recordAudit(tx, ctx, { action: audit, resourceType: 'incident', resourceId: view.id, after: presentIncident(view) })
  return view
}

/**
 * Persists one lifecycle change with its audit row: a guarded update (the incident must still be in the
 * status the change was decided from); undefined when it no longer was.
 */
export async function saveIncidentChange(
  tx: Executor,
  ctx: ChangeContext,
  before: IncidentView,
  change: IncidentChange,
  now: Date
): Promise<IncidentView | undefined> {
  const [row] = await tx
    .update(incidents)
    .set({ ...stamped(change.set), updatedAt: now })
    .where(and(eq(incidents.id, before.id), eq(incidents.status, before.status)))
    .returning()
  if (!row) return undefined
  const after = { ...row, service: before.service }
  if (change.effects.audit) {
    await recordAudit(tx, ctx, {
      action: change.effects.audit,
      resourceType: 'incident',
      resourceId: before.id,
      before: presentIncident(before),
      after: presentIncident(after)
    })
  }
  return after
}

export function actionsOfIncident(exec: Executor, incidentId: string) {
  return exec.select().from(actions).where(eq(actions.incidentId, incidentId)).orderBy(actions.id).limit(200)
}

export const presentIncident = (row: IncidentView) => ({
  id: row.id,
  serviceId: row.serviceId,
  service: row.service,
  title: row.title,
  severity: row.severity,
  status: row.status,
  flapping: row.flapping,
  source: row.source,
  dedupKey: row.dedupKey,
  metrics: row.metrics,
  series: row.series,
  anomalyCount: row.anomalyCount,
  peakZScore: row.peakZScore,
  details: row.details,
  openedAt: row.openedAt.toISOString(),
  acknowledgedAt: iso(row.acknowledgedAt),
  acknowledgedBy: row.acknowledgedBy,
  resolvedAt: iso(row.resolvedAt),
  resolvedBy: row.resolvedBy,
  resolutionNote: row.resolutionNote
})
