import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errors, problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { decodeCursor, Page, PageQuery, toPage } from '../../lib/pagination.js'
import { IdParams, TimeInput, Timestamp, toDate } from '../../lib/schemas.js'
import { baselinesOf, recentAnomalies } from '../detection/window.js'
import { findService, listServices } from './repository.js'
import { CreateServiceBody, ServiceSchema, UpdateServiceBody, WindowAnomalyFields } from './schemas.js'
import { createServicesService, detectionOf, presentService } from './service.js'

const BaselineSchema = Type.Object({
  metric: Type.String(),
  mean: Type.Number(),
  stddev: Type.Number(),
  samples: Type.Integer(),
  state: Type.Enum(['learning', 'ready'] as const),
  updatedAt: Timestamp
})
const WindowAnomalySchema = Type.Object(WindowAnomalyFields)
const OFFSET_CURSOR = /^\d{1,6}$/

export const serviceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const servicesService = createServicesService({ db: app.db })
  const tags = ['services']

  app.post(
    '/services',
    {
      config: { minRole: 'admin', idempotent: {} },
      schema: {
        tags,
        operationId: 'createService',
        summary: 'Register a monitored service',
        body: CreateServiceBody,
        response: { 201: ServiceSchema, ...problemResponses(400, 401, 402, 403, 409, 429) }
      }
    },
    async (request, reply) => reply.code(201).send(presentService(await servicesService.create(changeContext(request), request.body)))
  )

  app.get(
    '/services',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'listServices',
        summary: 'List services',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(ServiceSchema), ...problemResponses(400, 401, 429) }
      }
    },
    async (request) => {
      const { limit, cursor } = request.query
      const rows = await listServices(app.db, request.principal.organizationId, limit + 1, decodeCursor(cursor))
      return toPage(rows, limit, presentService)
    }
  )

  app.get(
    '/services/:id',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'getService',
        summary: 'Get a service',
        params: IdParams,
        response: { 200: ServiceSchema, ...problemResponses(400, 401, 404, 429) }
      }
    },
    async (request) => {
      const row = await findService(app.db, request.principal.organizationId, request.params.id)
      if (!row) throw errors.notFound('service')
      return presentService(row)
    }
  )

  app.patch(
    '/services/:id',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'updateService',
        summary: 'Update a service; detection fields are merged over the stored config',
        params: IdParams,
        body: UpdateServiceBody,
        response: { 200: ServiceSchema, ...problemResponses(400, 401, 403, 404, 409, 429) }
      }
    },
    async (request) => {
      const ctx = changeContext(request)
      const { before, after } = await servicesService.update(ctx, request.params.id, request.body)
      await app.serviceResolver.forget(ctx.organizationId, before.name)
      return presentService(after)
    }
  )

  app.delete(
    '/services/:id',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'deleteService',
        summary: 'Delete a service (its incidents and audit trail are kept)',
        params: IdParams,
        response: { 204: Type.Null({ description: 'deleted' }), ...problemResponses(400, 401, 403, 404, 429) }
      }
    },
    async (request, reply) => {
      const ctx = changeContext(request)
      const removed = await servicesService.remove(ctx, request.params.id)
      await app.serviceResolver.forget(ctx.organizationId, removed.name)
      return reply.code(204).send(null)
    }
  )

  app.get(
    '/services/:id/baselines',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'listBaselines',
        summary: 'Rolling baselines of the service, one per metric (learning until minSamples)',
        params: IdParams,
        response: { 200: Type.Object({ items: Type.Array(BaselineSchema) }), ...problemResponses(400, 401, 404, 429, 503) }
      }
    },
    async (request) => {
      const service = await findService(app.db, request.principal.organizationId, request.params.id)
      if (!service) throw errors.notFound('service')
      return { items: await baselinesOf(app.redis, service.id, detectionOf(service).minSamples) }
    }
  )

  app.get(
    '/services/:id/anomalies',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'listAnomalies',
        summary: 'Anomalies of the service in the recent window (the last hour at most), newest first',
        params: IdParams,
        querystring: Type.Object(
          {
            since: Type.Optional(TimeInput),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 200 }),
            cursor: Type.Optional(Type.String({ pattern: OFFSET_CURSOR.source }))
          },
          { additionalProperties: false }
        ),
        response: {
          200: Type.Object({ items: Type.Array(WindowAnomalySchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          ...problemResponses(400, 401, 404, 429, 503)
        }
      }
    },
    async (request) => {
      const service = await findService(app.db, request.principal.organizationId, request.params.id)
      if (!service) throw errors.notFound('service')
      const { since, limit, cursor } = request.query
      const offset = cursor ? Number(cursor) : 0
      const items = await recentAnomalies(app.redis, service.id, since === undefined ? 0 : toDate(since).getTime(), offset, limit + 1)
      return { items: items.slice(0, limit), nextCursor: items.length > limit ? String(offset + limit) : null }
    }
  )
}
