import { and, desc, eq, isNull, lt, type SQL } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { runbooks } from '../../db/schema/index.js'

const live = (organizationId: string, serviceId: string) =>
  and(eq(runbooks.organizationId, organizationId), eq(runbooks.serviceId, serviceId), isNull(runbooks.deletedAt))

export async function insertRunbook(exec: Executor, values: typeof runbooks.$inferInsert) {
  const [row] = await exec.insert(runbooks).values(values).returning()
  return row!
}

export function findRunbook(exec: Executor, organizationId: string, serviceId: string, id: string) {
  return exec
    .select()
    .from(runbooks)
    .where(and(live(organizationId, serviceId), eq(runbooks.id, id)))
    .then((rows) => rows[0])
}

export function listRunbooks(exec: Executor, organizationId: string, serviceId: string, limit: number, after?: string) {
  const where: (SQL | undefined)[] = [live(organizationId, serviceId)]
  if (after) where.push(lt(runbooks.id, after))
  return exec
    .select()
    .from(runbooks)
    .where(and(...where))
    .orderBy(desc(runbooks.id))
    .limit(limit)
}

export async function deleteRunbook(exec: Executor, id: string) {
  await exec.update(runbooks).set({ deletedAt: new Date() }).where(eq(runbooks.id, id))
}
