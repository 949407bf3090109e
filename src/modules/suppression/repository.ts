import { and, count, eq, gt, lte, or, type SQL } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { keysetPage, type PageRequest } from '../../db/keyset.js'
import { organizations, suppressionRules } from '../../db/schema/index.js'

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

/**
 * Rules of the organization that have not ended at `now`. With `lock`, concurrent creations of the
 * organization wait for each other (its row is locked), so the count cannot be raced past a limit.
 */
export async function countLiveRules(exec: Executor, organizationId: string, now: Date, options: { lock?: boolean } = {}): Promise<number> {
  if (options.lock) await exec.select({ id: organizations.id }).from(organizations).where(eq(organizations.id, organizationId)).for('update')
  const [row] = await exec
    .select({ n: count() })
    .from(suppressionRules)
    .where(and(eq(suppressionRules.organizationId, organizationId), gt(suppressionRules.endsAt, now)))
  return row!.n
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
