import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { decodeCursor, Page, toPage } from '../../lib/pagination.js'
import { IdParams } from '../../lib/schemas.js'
import { presentActionTo } from '../actions/schemas.js'
import { presentAudit } from '../audit/schemas.js'
import { presentIncident } from './repository.js'
import { IncidentDetailSchema, IncidentSchema, ListIncidentsQuery, ResolveBody } from './schemas.js'

export const incidentRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { incidents } = app.services
  const tags = ['incidents']

  app.get(
    '/incidents',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'listIncidents',
        summary: 'List incidents, newest first',
        querystring: ListIncidentsQuery,
        response: { 200: Page(IncidentSchema), ...problemResponses(400, 401, 429) }
      }
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query
      const rows = await incidents.list(request.principal.organizationId, filter, { after: decodeCursor(cursor), limit })
      return toPage(rows, limit, presentIncident)
    }
  )

  app.get(
    '/incidents/:id',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'getIncident',
        summary: 'An incident with its timeline and actions',
        description: 'The actions\' webhook header values and URL secrets read "[redacted]" for roles below admin.',
        params: IdParams,
        response: { 200: IncidentDetailSchema, ...problemResponses(400, 401, 404, 429) }
      }
    },
    async (request) => {
      const { incident, timeline, actions } = await incidents.detail(request.principal.organizationId, request.params.id)
      return { ...presentIncident(incident), timeline: timeline.map(presentAudit), actions: actions.map(presentActionTo(request.principal)) }
    }
  )

  app.post(
    '/incidents/:id/acknowledge',
    {
      config: { minRole: 'operator' },
      schema: {
        tags,
        operationId: 'acknowledgeIncident',
        summary: 'Acknowledge an open incident',
        params: IdParams,
        response: { 200: IncidentSchema, ...problemResponses(400, 401, 403, 404, 409, 429) }
      }
    },
    async (request) => presentIncident(await incidents.acknowledge(changeContext(request), request.params.id))
  )

  app.post(
    '/incidents/:id/resolve',
    {
      config: { minRole: 'operator' },
      schema: {
        tags,
        operationId: 'resolveIncident',
        summary: 'Resolve an open or acknowledged incident',
        params: IdParams,
        body: ResolveBody,
        response: { 200: IncidentSchema, ...problemResponses(400, 401, 403, 404, 409, 429) }
      }
    },
    async (request) => presentIncident(await incidents.resolve(changeContext(request), request.params.id, request.body?.note))
  )
}
