import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { and, count, eq, isNull } from 'drizzle-orm'
import Type from 'typebox'
import { services } from '../../db/schema/index.js'
import { errors, problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { PlanSchema } from '../../lib/schemas.js'
import { LimitsSchema } from '../auth/schemas.js'
import { recordAudit } from '../audit/repository.js'
import { PLAN_LIMITS } from './plans.js'
import { findSubscription, lockOrganization, setPlan } from './repository.js'

const SubscriptionSchema = Type.Object({
  plan: PlanSchema,
  status: Type.Union([Type.Literal('active'), Type.Literal('past_due'), Type.Literal('canceled')]),
  limits: LimitsSchema,
  updatedAt: Type.String({ format: 'date-time' })
})

const present = (row: { plan: keyof typeof PLAN_LIMITS; status: 'active' | 'past_due' | 'canceled'; updatedAt: Date }) => ({
  plan: row.plan,
  status: row.status,
  limits: PLAN_LIMITS[row.plan],
  updatedAt: row.updatedAt.toISOString()
})

export const subscriptionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['subscription']

  app.get(
    '/subscription',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'getSubscription',
        summary: 'The organization plan and its limits',
        response: { 200: SubscriptionSchema, ...problemResponses(401, 429) }
      }
    },
    async (request) => {
      const row = await findSubscription(app.db, request.principal.organizationId)
      if (!row) throw errors.notFound('subscription')
      return present(row)
    }
  )

  app.put(
    '/subscription',
    {
      config: { minRole: 'owner' },
      schema: {
        tags,
        operationId: 'changePlan',
        summary: 'Change plan (no billing provider; the change is audited)',
        description: 'A downgrade below current usage (e.g. more services than the new plan allows) is refused with 409.',
        body: Type.Object({ plan: PlanSchema }, { additionalProperties: false }),
        response: { 200: SubscriptionSchema, ...problemResponses(400, 401, 403, 409, 429) }
      }
    },
    async (request) => {
      const { principal } = request
      const { plan } = request.body
      const updated = await app.db.transaction(async (tx) => {
        await lockOrganization(tx, principal.organizationId)
        const before = await findSubscription(tx, principal.organizationId)
        if (!before) throw errors.notFound('subscription')
        if (before.plan === plan) return before
        const { maxServices } = PLAN_LIMITS[plan]
        if (maxServices !== null) {
          const [usage] = await tx
            .select({ n: count() })
            .from(services)
            .where(and(eq(services.organizationId, principal.organizationId), isNull(services.deletedAt)))
          if (usage!.n > maxServices) {
            throw errors.conflict(`the organization has ${usage!.n} services; the ${plan} plan allows ${maxServices}`)
          }
        }
        const after = await setPlan(tx, principal.organizationId, plan)
        await recordAudit(
          tx,
          changeContext(request),
          {
            action: 'subscription.plan_changed',
            resourceType: 'subscription',
            resourceId: after.id,
            before: present(before),
            after: present(after)
          }
        )
        return after
      })
      app.plans.forget(principal.organizationId)
      return present(updated)
    }
  )
}
