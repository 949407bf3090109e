import { eq } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { organizations, subscriptions, type Plan } from '../../db/schema/index.js'

export function findSubscription(exec: Executor, organizationId: string) {
  return exec
    .select()
    .from(subscriptions)
    .where(eq(subscriptions.organizationId, organizationId))
    .then((rows) => rows[0])
}

/** Locks the organization row: serialises plan changes with plan-limited creations. */
export async function lockOrganization(exec: Executor, organizationId: string) {
  const [row] = await exec.select().from(organizations).where(eq(organizations.id, organizationId)).for('update')
  return row
}

export async function setPlan(exec: Executor, organizationId: string, plan: Plan, now: Date) {
  const [row] = await exec
    .update(subscriptions)
    .set({ plan, updatedAt: now })
    .where(eq(subscriptions.organizationId, organizationId))
    .returning()
  return row!
}
