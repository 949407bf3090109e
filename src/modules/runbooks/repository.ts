import { and, eq, isNull } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { keysetPage, type PageRequest } from '../../db/keyset.js'
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

export function listRunbooks(exec: Executor, organizationId: string, serviceId: string, page: PageRequest) {
  return keysetPage(exec.select().from(runbooks).$dynamic(), runbooks.id, [live(organizationId, serviceId)], page)
}

export async function deleteRunbook(exec: Executor, id: string, now: Date) {
  await exec.update(runbooks).set({ deletedAt: now }).where(eq(runbooks.id, id))
}
