import { and, desc, eq, inArray, lt, type SQL } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { actions, type ActionStatus } from '../../db/schema/index.js'

export type ActionRow = typeof actions.$inferSelect

export async function insertAction(exec: Executor, values: typeof actions.$inferInsert) {
  const [row] = await exec.insert(actions).values(values).returning()
  return row!
}

export function findAction(exec: Executor, organizationId: string, id: string) {
  return exec
    .select()
    .from(actions)
    .where(and(eq(actions.organizationId, organizationId), eq(actions.id, id)))
    .then((rows) => rows[0])
}

export interface ActionFilter {
  status?: ActionStatus
  incidentId?: string
  after?: string
  limit: number
}

export function listActions(exec: Executor, organizationId: string, filter: ActionFilter) {
  const where: SQL[] = [eq(actions.organizationId, organizationId)]
  if (filter.status) where.push(eq(actions.status, filter.status))
  if (filter.incidentId) where.push(eq(actions.incidentId, filter.incidentId))
  if (filter.after) where.push(lt(actions.id, filter.after))
  return exec
    .select()
    .from(actions)
    .where(and(...where))
    .orderBy(desc(actions.id))
    .limit(filter.limit)
}

/** Moves an action between statuses only from the given ones (and, optionally, a further condition). */
export async function transitionAction(
  exec: Executor,
  id: string,
  from: ActionStatus[],
  set: Partial<typeof actions.$inferInsert>,
  extra?: SQL
) {
  const [row] = await exec
    .update(actions)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(actions.id, id), inArray(actions.status, from), extra))
    .returning()
  return row
}
