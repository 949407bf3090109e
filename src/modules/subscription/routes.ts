import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { PlanSchema } from '../../lib/schemas.js'
import { presentSubscription, SubscriptionSchema } from './schemas.js'

export const subscriptionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { subscription } = app.services
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
    async (request) => presentSubscription(await subscription.get(request.principal.organizationId))
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
      return presentSubscription(await subscription.changePlan(changeContext(request), request.body.plan))
    }
  )
}
