import { and, eq, gt, lte, or, type SQL } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { keysetPage, type PageRequest } from '../../db/keyset.js'
import { suppressionRules } from '../../db/schema/index.js'

export type SuppressionRuleRow = typeof suppressionRules.$inferSelect

export async function insertRule(exec: Executor, values: typeof suppressionRules.$inferInsert) {
  const [row] = await exec.insert(suppressionRules).values(values).returning()
  return row!
}

export function findRule(exec: Executor, organizationId: string, id: string) {
  return exec
    .select()
    .from(suppressionRules)
    .where(and(eq(suppressionRules.organizationId, organizationId), eq(suppressionRules.id, id)))
    .then((rows) => rows[0])
}

/** `active`: only rules whose window contains `now` (true) or does not (false). */
export function listRules(exec: Executor, organizationId: string, filter: { active?: boolean; now: Date }, page: PageRequest) {
  const where: (SQL | undefined)[] = [eq(suppressionRules.organizationId, organizationId)]
  if (filter.active === true) where.push(lte(suppressionRules.startsAt, filter.now), gt(suppressionRules.endsAt, filter.now))
  if (filter.active === false) where.push(or(gt(suppressionRules.startsAt, filter.now), lte(suppressionRules.endsAt, filter.now)))
  return keysetPage(exec.select().from(suppressionRules).$dynamic(), suppressionRules.id, where, page)
}

/** Ends a rule now; a rule that has not started yet gets the empty window [startsAt, startsAt). */
export async function endRule(exec: Executor, row: SuppressionRuleRow, endedBy: string, now: Date) {
  const endsAt = new Date(Math.min(row.endsAt.getTime(), Math.max(row.startsAt.getTime(), now.getTime())))
  const [updated] = await exec
    .update(suppressionRules)
    .set({ endsAt, endedAt: now, endedBy })
    .where(eq(suppressionRules.id, row.id))
    .returning()
  return updated!
}
