import { and, asc, eq } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { keysetPage } from '../../db/keyset.js'
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
  /** the page size; with `ascending`, the most entries read */
  limit: number
  /** a whole timeline, oldest first (up to `limit` entries, not paged), instead of a newest-first page */
  ascending?: boolean
}

export function listAudit(exec: Executor, organizationId: string, filter: AuditFilter) {
  const filters = [
    eq(auditLog.organizationId, organizationId),
    filter.resourceType ? eq(auditLog.resourceType, filter.resourceType) : undefined,
    filter.resourceId ? eq(auditLog.resourceId, filter.resourceId) : undefined
  ]
  const query = exec.select().from(auditLog).$dynamic()
  if (filter.ascending) return query.where(and(...filters)).orderBy(asc(auditLog.id)).limit(filter.limit)
  return keysetPage(query, auditLog.id, filters, filter)
}
