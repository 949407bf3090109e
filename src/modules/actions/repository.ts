import { and, asc, desc, eq, gt, inArray, isNull, lte, or, sql, type SQL } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { keysetPage, type PageRequest } from '../../db/keyset.js'
import { actions, incidents, organizations, runbooks, services, type ActionStatus } from '../../db/schema/index.js'
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

/** The organization an action belongs to, unlocked: what the worker knows of a job before it claims it. */
export function findActionOrganization(exec: Executor, id: string): Promise<string | undefined> {
  return exec
    .select({ organizationId: actions.organizationId })
    .from(actions)
    .where(eq(actions.id, id))
    .then((rows) => rows[0]?.organizationId)
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
async function saveActionChange(
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

/** Extends a running action's lease; false when it is no longer running (e.g. needs_review). Not a status change: no audit row. */
export async function renewActionLease(exec: Executor, id: string, until: Date): Promise<boolean> {
  const [row] = await exec
    .update(actions)
    .set({ leaseExpiresAt: until })
    .where(and(eq(actions.id, id), eq(actions.status, 'running')))
    .returning({ id: actions.id })
  return row !== undefined
}

/** The organization's webhook signing secret. */
export function findWebhookSecret(exec: Executor, organizationId: string): Promise<string | undefined> {
  return exec
    .select({ secret: organizations.webhookSecret })
    .from(organizations)
    .where(eq(organizations.id, organizationId))
    .then((rows) => rows[0]?.secret)
}

/**
 * The service's runbooks that match an incident's metrics and severity, locked in id order: two incidents
 * of the service opening at once (an alert and the detector) take turns without deadlocking, and the
 * second sees the first's proposals in its cooldown check.
 */
export function lockMatchingRunbooks(tx: Executor, incident: Pick<typeof incidents.$inferSelect, 'serviceId' | 'metrics' | 'severity'>) {
  return tx
    .select()
    .from(runbooks)
    .where(
      and(
        eq(runbooks.serviceId, incident.serviceId),
        isNull(runbooks.deletedAt),
        or(isNull(runbooks.matchMetric), inArray(runbooks.matchMetric, incident.metrics.length > 0 ? incident.metrics : [''])),
        or(isNull(runbooks.matchMinSeverity), incident.severity === 'critical' ? sql`true` : eq(runbooks.matchMinSeverity, 'warning'))
      )
    )
    .orderBy(runbooks.id)
    .for('update')
}

/** Did the runbook propose an action since `since` (its cooldown)? */
export async function proposedWithin(tx: Executor, runbookId: string, since: Date): Promise<boolean> {
  const [recent] = await tx
    .select({ id: actions.id })
    .from(actions)
    .where(and(eq(actions.runbookId, runbookId), gt(actions.createdAt, since)))
    .orderBy(desc(actions.id))
    .limit(1)
  return recent !== undefined
}

/** Approved actions not yet handed to the queue, oldest first. */
export async function approvedActionIds(exec: Executor, limit: number): Promise<string[]> {
  const rows = await exec.select({ id: actions.id }).from(actions).where(eq(actions.status, 'approved')).orderBy(asc(actions.id)).limit(limit)
  return rows.map((row) => row.id)
}

/** Queued actions dispatched before `before` (whose job should be in the queue by now), oldest first. */
export async function queuedActionIds(exec: Executor, before: Date, limit: number): Promise<string[]> {
  const rows = await exec
    .select({ id: actions.id })
    .from(actions)
    .where(and(eq(actions.status, 'queued'), lte(actions.dispatchedAt, before)))
    .orderBy(asc(actions.id))
    .limit(limit)
  return rows.map((row) => row.id)
}

/** Succeeded actions awaiting verification that finished before `before`, with their incident's metrics and their service. */
export function actionsToVerify(exec: Executor, before: Date, limit: number) {
  return exec
    .select({ action: actions, metrics: incidents.metrics, service: services })
    .from(actions)
    .innerJoin(incidents, eq(incidents.id, actions.incidentId))
    .innerJoin(services, eq(services.id, actions.serviceId))
    .where(and(eq(actions.status, 'succeeded'), eq(actions.verificationState, 'pending'), lte(actions.finishedAt, before)))
    .limit(limit)
}
