import { and, desc, eq, lt, type SQL } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { auditLog } from '../../db/schema/index.js'
import type { ChangeContext } from '../../lib/context.js'

export interface AuditEntry {
  /** set by writers that may replay the entry (dead-letter queue): the same id never lands twice */
  id?: string
  action: string
  resourceType: string
  resourceId: string
  before?: unknown
  after?: unknown
}

/** Appends audit rows with the change's transaction, so the change and its record commit together. */
export async function recordAudit(exec: Executor, ctx: ChangeContext, ...entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return
  await exec
    .insert(auditLog)
    .values(
      entries.map((entry) => ({
        ...(entry.id ? { id: entry.id } : {}),
        organizationId: ctx.organizationId,
        actorType: ctx.actor.type,
        actorId: ctx.actor.id,
        action: entry.action,
        resourceType: entry.resourceType,
        resourceId: entry.resourceId,
        before: entry.before ?? null,
        after: entry.after ?? null,
        requestId: ctx.requestId ?? null
      }))
    )
    .onConflictDoNothing({ target: auditLog.id })
}

export interface AuditFilter {
  resourceType?: string
  resourceId?: string
  after?: string
  limit: number
  /** oldest first (timelines) instead of newest first */
  ascending?: boolean
}

export function listAudit(exec: Executor, organizationId: string, filter: AuditFilter) {
  const where: SQL[] = [eq(auditLog.organizationId, organizationId)]
  if (filter.resourceType) where.push(eq(auditLog.resourceType, filter.resourceType))
  if (filter.resourceId) where.push(eq(auditLog.resourceId, filter.resourceId))
  if (filter.after) where.push(lt(auditLog.id, filter.after))
  return exec
    .select()
    .from(auditLog)
    .where(and(...where))
    .orderBy(filter.ascending ? auditLog.id : desc(auditLog.id))
    .limit(filter.limit)
}
