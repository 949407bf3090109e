import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { ACTION_STATUSES } from '../../db/schema/index.js'
import { problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { decodeCursor, Page, toPage } from '../../lib/pagination.js'
import { IdParams, Uuid } from '../../lib/schemas.js'
import { ActionParamsSchema, ActionTypeSchema } from './params.js'
import { ActionSchema, presentActionTo } from './schemas.js'

const ProposeBody = Type.Object(
  { type: ActionTypeSchema, params: ActionParamsSchema, reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })) },
  { additionalProperties: false }
)
const RejectBody = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false })
const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
    status: Type.Optional(Type.Enum(ACTION_STATUSES)),
    incidentId: Type.Optional(Uuid)
  },
  { additionalProperties: false }
)

export const actionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { actions } = app.services
  const tags = ['actions']

  app.post(
    '/incidents/:id/actions',
    {
      config: { minRole: 'operator', idempotent: {} },
      schema: {
        tags,
        operationId: 'proposeAction',
        summary: 'Propose a remediation action on an incident; it waits for approval',
        description:
          'Webhook params: {url, method?, headers?, body?}; the URL host must be in WEBHOOK_ALLOWED_HOSTS (400 otherwise). The answer, like every answer with an action, shows header values and URL secrets as "[redacted]" to roles below admin; the webhook is called with the values as proposed.',
        params: IdParams,
        body: ProposeBody,
        response: { 201: ActionSchema, ...problemResponses(400, 401, 403, 404, 409, 429) }
      }
    },
    async (request, reply) =>
      reply.code(201).send(presentActionTo(request.principal)(await actions.propose(changeContext(request), request.params.id, request.body)))
  )

  app.get(
    '/actions',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'listActions',
        summary: 'List actions, newest first',
        querystring: ListQuery,
        response: { 200: Page(ActionSchema), ...problemResponses(400, 401, 429) }
      }
    },
    async (request) => {
      const { limit, cursor, status, incidentId } = request.query
      const rows = await actions.list(request.principal.organizationId, { status, incidentId }, { after: decodeCursor(cursor), limit })
      return toPage(rows, limit, presentActionTo(request.principal))
    }
  )

  app.get(
    '/actions/:id',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'getAction',
        summary: 'Get an action',
        params: IdParams,
        response: { 200: ActionSchema, ...problemResponses(400, 401, 404, 429) }
      }
    },
    async (request) => {
      return presentActionTo(request.principal)(await actions.get(request.principal.organizationId, request.params.id))
    }
  )

  app.post(
    '/actions/:id/approve',
    {
      config: { minRole: 'operator' },
      schema: {
        tags,
        operationId: 'approveAction',
        summary: 'Approve a pending action: committed first, then queued for execution',
        description: 'Answers the action as approved, or queued when the queue took it at once (otherwise the reconciler dispatches it within seconds). Expired or not pending → 409.',
        params: IdParams,
        response: { 200: ActionSchema, ...problemResponses(400, 401, 403, 404, 409, 429) }
      }
    },
    async (request) => presentActionTo(request.principal)(await actions.approve(changeContext(request), request.params.id))
  )

  app.post(
    '/actions/:id/reject',
    {
      config: { minRole: 'operator' },
      schema: {
        tags,
        operationId: 'rejectAction',
        summary: 'Reject a pending action',
        params: IdParams,
        body: RejectBody,
        response: { 200: ActionSchema, ...problemResponses(400, 401, 403, 404, 409, 429) }
      }
    },
    async (request) => presentActionTo(request.principal)(await actions.reject(changeContext(request), request.params.id, request.body.reason))
  )

  app.get(
    '/webhook-secret',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'getWebhookSecret',
        summary: "The organization's webhook signing secret (X-Autopilot-Signature: sha256=HMAC of `<X-Autopilot-Timestamp>.<X-Autopilot-Action-Id>.<raw body>`)",
        response: { 200: Type.Object({ secret: Type.String() }), ...problemResponses(401, 403, 429) }
      }
    },
    async (request) => ({ secret: await actions.webhookSecret(request.principal.organizationId) })
  )
}
