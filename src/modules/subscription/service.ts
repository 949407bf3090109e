import type { Database } from '../../db/client.js'
import type { Plan } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import type { ChangeContext } from '../../lib/context.js'
import { recordAudit } from '../audit/repository.js'
import type { Executor } from '../../db/client.js'
import type { PlanCache } from './plan-cache.js'
import { PLAN_LIMITS } from './plans.js'
import { findSubscription, lockOrganization, setPlan } from './repository.js'
import { presentSubscription } from './schemas.js'

/** How many live services an organization has: a plan change checks it against the new plan. */
export type CountServices = (exec: Executor, organizationId: string) => Promise<number>

export function createSubscriptionService(deps: { db: Database; clock: Clock; countServices: CountServices; plans: Pick<PlanCache, 'forget'> }) {
  async function get(organizationId: string) {
    const row = await findSubscription(deps.db, organizationId)
    if (!row) throw errors.notFound('subscription')
    return row
  }

  /**
   * Changes the plan; a downgrade below current usage is refused (409). The organization lock serialises
   * it with plan-limited creations, so usage cannot grow past the new plan meanwhile.
   */
  async function changePlan(ctx: ChangeContext, plan: Plan) {
    const changed = await deps.db.transaction(async (tx) => {
      await lockOrganization(tx, ctx.organizationId)
      const before = await findSubscription(tx, ctx.organizationId)
      if (!before) throw errors.notFound('subscription')
      if (before.plan === plan) return before
      const { maxServices } = PLAN_LIMITS[plan]
      if (maxServices !== null) {
        const usage = await deps.countServices(tx, ctx.organizationId)
        if (usage > maxServices) throw errors.conflict(`the organization has ${usage} services; the ${plan} plan allows ${maxServices}`)
      }
      const after = await setPlan(tx, ctx.organizationId, plan, deps.clock.now())
      await recordAudit(tx, ctx, {
        action: 'subscription.plan_changed',
        resourceType: 'subscription',
        resourceId: after.id,
        before: presentSubscription(before),
        after: presentSubscription(after)
      })
      return after
    })
    deps.plans.forget(ctx.organizationId)
    return changed
  }

  return { get, changePlan }
}
