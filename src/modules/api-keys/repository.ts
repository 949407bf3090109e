import { and, desc, eq, isNull, lt, type SQL } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { apiKeys } from '../../db/schema/index.js'

export type ApiKeyRow = typeof apiKeys.$inferSelect

export function findActiveKeyByHash(exec: Executor, keyHash: string) {
  return exec
    .select({ id: apiKeys.id, organizationId: apiKeys.organizationId, role: apiKeys.role })
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)))
    .then((rows) => rows[0])
}

export function findKey(exec: Executor, organizationId: string, id: string) {
  return exec
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.organizationId, organizationId), eq(apiKeys.id, id)))
    .then((rows) => rows[0])
}

export async function insertKey(exec: Executor, values: typeof apiKeys.$inferInsert) {
  const [row] = await exec.insert(apiKeys).values(values).returning()
  return row!
}

export async function revokeKey(exec: Executor, id: string) {
  const [row] = await exec
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning()
  return row
}

export function listKeys(exec: Executor, organizationId: string, limit: number, after?: string) {
  const where: SQL[] = [eq(apiKeys.organizationId, organizationId)]
  if (after) where.push(lt(apiKeys.id, after))
  return exec
    .select()
    .from(apiKeys)
    .where(and(...where))
    .orderBy(desc(apiKeys.id))
    .limit(limit)
}
