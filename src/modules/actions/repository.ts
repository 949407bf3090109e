import { and, asc, eq, lte, type SQL } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { keysetPage, type PageRequest } from '../../db/keyset.js'
import { actions, type ActionStatus } from '../../db/schema/index.js'
import type { ChangeContext } from '../../lib/context.js'
import { recordAudit, type AuditEntry } from '../audit/repository.js'
import { transition, type ActionChange, type ActionEvent, type ActionRow } from './lifecycle.js'
import { presentAction } from './schemas.js'

export type { ActionRow } from './lifecycle.js'

/** Inserts actions with their audit rows (`action.proposed`, and `action.approved` for auto-approved ones). */
export async function insertAction(tx: Executor, ctx: ChangeContext, values: typeof actions.$inferInsert): Promise<ActionRow> {
  const [row] = await tx.insert(actions).values(values).returning()
  const entries: AuditEntry[] = [{ action: 'action.proposed', resourceType: 'action', resourceId: row!.id, after: presentAction(row!) }]
  if (row!.status === 'approved') entries.push({ action: 'action.approved', resourceType: 'action', resourceId: row!.id, after: presentAction(row!) })
  await recordAudit(tx, ctx, ...entries)
  return row!
}

export function findAction(exec: Executor, organizationId: string, id: string): Promise<ActionRow | undefined> {
  return exec
    .select()
    .from(actions)
    .where(and(eq(actions.organizationId, organizationId), eq(actions.id, id)))
    .then((rows) => rows[0])
}

/** An action locked for the transaction; without an organization, for the worker (job payloads carry ids only). */
export function lockAction(tx: Executor, id: string, organizationId?: string): Promise<ActionRow | undefined> {
  return tx
    .select()
    .from(actions)
    .where(and(eq(actions.id, id), organizationId ? eq(actions.organizationId, organizationId) : undefined))
    .for('update')
    .then((rows) => rows[0])
}

/** Actions in a status whose deadline passed, oldest first, locked; rows another transaction holds wait for the next sweep. */
export function lockDueActions(tx: Executor, status: ActionStatus, due: SQL, limit: number): Promise<ActionRow[]> {
  return tx
    .select()
    .from(actions)
    .where(and(eq(actions.status, status), due))
    .orderBy(asc(actions.id))
    .limit(limit)
    .for('update', { skipLocked: true })
}

export const deadlinePassed = (now: Date) => lte(actions.expiresAt, now)
export const leasePassed = (now: Date) => lte(actions.leaseExpiresAt, now)

export interface ActionFilter {
  status?: ActionStatus
  incidentId?: string
}

export function listActions(exec: Executor, organizationId: string, filter: ActionFilter, page: PageRequest) {
  const where: SQL[] = [eq(actions.organizationId, organizationId)]
  if (filter.status) where.push(eq(actions.status, filter.status))
  if (filter.incidentId) where.push(eq(actions.incidentId, filter.incidentId))
  return keysetPage(exec.select().from(actions).$dynamic(), actions.id, where, page)
}

/**
 * Persists one lifecycle change with its audit row: a guarded update (the action must still be in the
 * status the change was decided from, so of two racing writers one wins); undefined when it no longer was.
 */
export async function saveActionChange(
  tx: Executor,
  ctx: ChangeContext,
  before: ActionRow,
  change: ActionChange,
  now: Date,
  auditId?: string
): Promise<ActionRow | undefined> {
  const [row] = await tx
    .update(actions)
    .set({ ...change.set, updatedAt: now })
    .where(and(eq(actions.id, before.id), eq(actions.status, before.status)))
    .returning()
  if (!row) return undefined
  if (change.audit) {
    await recordAudit(tx, ctx, {
      ...(auditId ? { id: auditId } : {}),
      action: change.audit,
      resourceType: 'action',
      resourceId: row.id,
      // A claim's audit row has always shown only the action as it starts.
      ...(change.audit === 'action.started' ? {} : { before: presentAction(before) }),
      after: presentAction(row)
    })
  }
  return row
}

/**
 * Applies one lifecycle event to an action inside the caller's transaction: decided by the lifecycle
 * (InvalidTransitionError when its state refuses), persisted with its audit row. Undefined when another
 * writer changed the action first.
 */
export function changeAction(tx: Executor, ctx: ChangeContext, before: ActionRow, event: ActionEvent, now: Date, auditId?: string) {
  return saveActionChange(tx, ctx, before, transition(before, event, now), now, auditId)
}
