import { and, desc, eq, inArray, lt, or, type SQL } from 'drizzle-orm'
import { getTableColumns } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { actions, incidents, services, type IncidentStatus } from '../../db/schema/index.js'
import { iso } from '../../lib/schemas.js'

const withServiceName = { ...getTableColumns(incidents), service: services.name }
export type IncidentView = typeof incidents.$inferSelect & { service: string }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface IncidentFilter {
  status?: IncidentStatus
  service?: string
  after?: string
  limit: number
}

export function listIncidents(exec: Executor, organizationId: string, filter: IncidentFilter): Promise<IncidentView[]> {
  const where: (SQL | undefined)[] = [eq(incidents.organizationId, organizationId)]
  if (filter.status) where.push(eq(incidents.status, filter.status))
  if (filter.service) {
    where.push(
      UUID.test(filter.service)
        ? or(eq(incidents.serviceId, filter.service), eq(services.name, filter.service))
        : eq(services.name, filter.service)
    )
  }
  if (filter.after) where.push(lt(incidents.id, filter.after))
  return exec
    .select(withServiceName)
    .from(incidents)
    .innerJoin(services, eq(services.id, incidents.serviceId))
    .where(and(...where))
    .orderBy(desc(incidents.id))
    .limit(filter.limit)
}

export function findIncident(exec: Executor, organizationId: string, id: string): Promise<IncidentView | undefined> {
  return exec
    .select(withServiceName)
    .from(incidents)
    .innerJoin(services, eq(services.id, incidents.serviceId))
    .where(and(eq(incidents.organizationId, organizationId), eq(incidents.id, id)))
    .then((rows) => rows[0])
}

/** Moves an incident between statuses only from the given ones; undefined when it was in none of them. */
export async function transitionIncident(
  exec: Executor,
  id: string,
  from: IncidentStatus[],
  set: Partial<typeof incidents.$inferInsert>
) {
  const [row] = await exec
    .update(incidents)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(incidents.id, id), inArray(incidents.status, from)))
    .returning()
  return row
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
