import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errors, problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { decodeCursor, Page, PageQuery, toPage } from '../../lib/pagination.js'
import { IdParams, Uuid } from '../../lib/schemas.js'
import { assertValidParams } from '../actions/params.js'
import { recordAudit } from '../audit/repository.js'
import { findService } from '../services/repository.js'
import { deleteRunbook, findRunbook, insertRunbook, listRunbooks } from './repository.js'
import { presentRunbook, RunbookBody, RunbookSchema } from './schemas.js'

const RunbookParams = Type.Object({ id: Uuid, rid: Uuid })

export const runbookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['runbooks']
  const serviceOf = async (organizationId: string, id: string) => {
    const service = await findService(app.db, organizationId, id)
    if (!service) throw errors.notFound('service')
    return service
  }

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
      const ctx = changeContext(request)
      const service = await serviceOf(ctx.organizationId, request.params.id)
      const body = request.body
      assertValidParams(body.action.type, body.action.params, app.config.webhookAllowedHosts, '/body/action/params')
      const row = await app.db.transaction(async (tx) => {
        const created = await insertRunbook(tx, {
          organizationId: ctx.organizationId,
          serviceId: service.id,
          name: body.name,
          matchMetric: body.match.metric ?? null,
          matchMinSeverity: body.match.minSeverity ?? null,
          actionType: body.action.type,
          actionParams: body.action.params,
          approval: body.approval,
          cooldownSeconds: body.cooldownSeconds
        })
        await recordAudit(tx, ctx, { action: 'runbook.created', resourceType: 'runbook', resourceId: created.id, after: presentRunbook(created) })
        return created
      })
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
      const { organizationId } = request.principal
      const service = await serviceOf(organizationId, request.params.id)
      const { limit, cursor } = request.query
      const rows = await listRunbooks(app.db, organizationId, service.id, limit + 1, decodeCursor(cursor))
      return toPage(rows, limit, presentRunbook)
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
    async (request) => {
      const row = await findRunbook(app.db, request.principal.organizationId, request.params.id, request.params.rid)
      if (!row) throw errors.notFound('runbook')
      return presentRunbook(row)
    }
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
      const ctx = changeContext(request)
      await app.db.transaction(async (tx) => {
        const before = await findRunbook(tx, ctx.organizationId, request.params.id, request.params.rid)
        if (!before) throw errors.notFound('runbook')
        await deleteRunbook(tx, before.id)
        await recordAudit(tx, ctx, { action: 'runbook.deleted', resourceType: 'runbook', resourceId: before.id, before: presentRunbook(before) })
      })
      return reply.code(204).send(null)
    }
  )
}
