import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errors, problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { decodeCursor, Page, PageQuery, toPage } from '../../lib/pagination.js'
import { IdParams } from '../../lib/schemas.js'
import { findService, listServices } from './repository.js'
import { CreateServiceBody, ServiceSchema, UpdateServiceBody } from './schemas.js'
import { createServicesService, presentService } from './service.js'

export const serviceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const servicesService = createServicesService({ db: app.db })
  const tags = ['services']

  app.post(
    '/services',
    {
      config: { minRole: 'admin' },
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
    async (request) => presentService(await servicesService.update(changeContext(request), request.params.id, request.body))
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
      await servicesService.remove(changeContext(request), request.params.id)
      return reply.code(204).send(null)
    }
  )
}
