import { and, count, eq, isNull, sql } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { isUniqueViolation } from '../../db/errors.js'
import { keysetPage, type PageRequest } from '../../db/keyset.js'
import { services } from '../../db/schema/index.js'
import { AlreadyExistsError } from '../../lib/domain-errors.js'

export type ServiceRow = typeof services.$inferSelect
const live = (organizationId: string) => and(eq(services.organizationId, organizationId), isNull(services.deletedAt))

export function findService(exec: Executor, organizationId: string, id: string) {
  return exec
    .select()
    .from(services)
    .where(and(live(organizationId), eq(services.id, id)))
    .then((rows) => rows[0])
}

export async function countServices(exec: Executor, organizationId: string) {
  const [row] = await exec.select({ n: count() }).from(services).where(live(organizationId))
  return row!.n
}

export function listServices(exec: Executor, organizationId: string, page: PageRequest) {
  return keysetPage(exec.select().from(services).$dynamic(), services.id, [live(organizationId)], page)
}

const duplicateName = (err: unknown) => (isUniqueViolation(err, 'services_name_unique') ? new AlreadyExistsError('service', 'name') : err)

export async function insertService(exec: Executor, values: typeof services.$inferInsert) {
  try {
    const [row] = await exec.insert(services).values(values).returning()
    return row!
  } catch (err) {
    throw duplicateName(err)
  }
}

/**
 * Inserts services by name with default settings, skipping names taken meanwhile (by a concurrent
 * registration): the rows inserted.
 */
export function insertServicesByName(exec: Executor, organizationId: string, names: string[], detection: typeof services.$inferInsert.detection) {
  if (names.length === 0) return Promise.resolve([])
  return exec
    .insert(services)
    .values(names.map((name) => ({ organizationId, name, detection })))
    .onConflictDoNothing({ target: [services.organizationId, services.name], where: sql`deleted_at IS NULL` })
    .returning()
}

export async function updateService(exec: Executor, id: string, values: Partial<typeof services.$inferInsert>, now: Date) {
  try {
    const [row] = await exec
      .update(services)
      .set({ ...values, updatedAt: now })
      .where(eq(services.id, id))
      .returning()
    return row!
  } catch (err) {
    throw duplicateName(err)
  }
}

export function listServiceNames(exec: Executor, organizationId: string, limit: number) {
  return exec.select({ id: services.id, name: services.name }).from(services).where(live(organizationId)).orderBy(services.name).limit(limit)
}
