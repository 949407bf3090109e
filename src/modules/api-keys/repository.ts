import { and, eq, isNull } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { keysetPage, type PageRequest } from '../../db/keyset.js'
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

export async function revokeKey(exec: Executor, id: string, now: Date) {
  const [row] = await exec
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning()
  return row
}

export function listKeys(exec: Executor, organizationId: string, page: PageRequest) {
  return keysetPage(exec.select().from(apiKeys).$dynamic(), apiKeys.id, [eq(apiKeys.organizationId, organizationId)], page)
}
