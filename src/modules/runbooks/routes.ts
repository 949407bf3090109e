import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { Page, PageQuery, pageRequest, toPage } from '../../lib/pagination.js'
import { IdParams, Uuid } from '../../lib/schemas.js'
import { presentRunbook, RunbookBody, RunbookSchema } from './schemas.js'

const RunbookParams = Type.Object({ id: Uuid, rid: Uuid })

export const runbookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { runbooks } = app.services
  const tags = ['runbooks']

  app.post(
    '/services/:id/runbooks',
    {
      config: { minRole: 'admin', idempotent: {} },
      schema: {
        tags,
        operationId: 'createRunbook',
        summary: 'Add a runbook: when an incident of the service opens or escalates and matches, it proposes its action',
        description: 'A webhook URL whose host is not in WEBHOOK_ALLOWED_HOSTS is refused with 400.',
        params: IdParams,
        body: RunbookBody,
        response: { 201: RunbookSchema, ...problemResponses(400, 401, 403, 404, 429) }
      }
    },
    async (request, reply) => {
      const row = await runbooks.create(changeContext(request), request.params.id, request.body)
      return reply.code(201).send(presentRunbook(row))
    }
  )

  app.get(
    '/services/:id/runbooks',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'listRunbooks',
        summary: 'List the runbooks of a service',
        params: IdParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(RunbookSchema), ...problemResponses(400, 401, 403, 404, 429) }
      }
    },
    async (request) => {
      const rows = await runbooks.list(request.principal.organizationId, request.params.id, pageRequest(request.query))
      return toPage(rows, request.query.limit, presentRunbook)
    }
  )

  app.get(
    '/services/:id/runbooks/:rid',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'getRunbook',
        summary: 'Get a runbook',
        params: RunbookParams,
        response: { 200: RunbookSchema, ...problemResponses(400, 401, 403, 404, 429) }
      }
    },
    async (request) => presentRunbook(await runbooks.get(request.principal.organizationId, request.params.id, request.params.rid))
  )

  app.delete(
    '/services/:id/runbooks/:rid',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'deleteRunbook',
        summary: 'Delete a runbook (actions it proposed keep their history)',
        params: RunbookParams,
        response: { 204: Type.Null({ description: 'deleted' }), ...problemResponses(400, 401, 403, 404, 429) }
      }
    },
    async (request, reply) => {
      await runbooks.remove(changeContext(request), request.params.id, request.params.rid)
      return reply.code(204).send(null)
    }
  )
}
