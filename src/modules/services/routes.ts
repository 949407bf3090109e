import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { SEVERITIES } from '../../db/schema/index.js'
import { problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { Page, PageQuery, pageRequest, toPage } from '../../lib/pagination.js'
import { IdParams, TimeInput, Timestamp, toDate, Uuid } from '../../lib/schemas.js'
import { AnomalySchema } from '../detection/schemas.js'
import { SeriesHistorySchema } from '../detection/series-history.js'
import { SERIES_KINDS, SeriesFields } from '../detection/series.js'
import { CreateServiceBody, METRIC_NAME_PATTERN, ServiceSchema, UpdateServiceBody } from './schemas.js'
import { presentService } from './service.js'

const BaselineSchema = Type.Object({
  metric: Type.String(),
  ...SeriesFields,
  kind: Type.Enum(SERIES_KINDS, { description: 'gauge; counter (scored on its per-second rate); time (a time-like gauge, never alerted)' }),
  mean: Type.Number(),
  stddev: Type.Number(),
  samples: Type.Integer(),
  state: Type.Enum(['learning', 'ready'] as const),
  seasonal: Type.Boolean({ description: 'scored against its learned daily/weekly shape' }),
  episode: Type.Union(
    [
      Type.Object({
        startedAt: Timestamp,
        lastAt: Timestamp,
        peakZScore: Type.Number(),
        severity: Type.Enum(SEVERITIES),
        confirmed: Type.Boolean({ description: 'it has lasted confirmSeconds (or its series had 1,000 samples of history): it pages' })
      }),
      Type.Null()
    ],
    { description: 'the anomaly episode going on, if any' }
  ),
  updatedAt: Timestamp
})
const OFFSET_CURSOR = /^\d{1,6}$/

export const serviceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { services } = app.services
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
    async (request, reply) => reply.code(201).send(presentService(await services.create(changeContext(request), request.body)))
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
      const rows = await services.list(request.principal.organizationId, pageRequest(request.query))
      return toPage(rows, request.query.limit, presentService)
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
    async (request) => presentService(await services.get(request.principal.organizationId, request.params.id))
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
    async (request) => presentService(await services.update(changeContext(request), request.params.id, request.body))
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
      await services.remove(changeContext(request), request.params.id)
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
        summary: 'Rolling baselines of the service, one per series (learning until minSamples over minSpanSeconds)',
        description:
          'Paged with a scan of the service\'s series (each page ordered by metric, then labels; follow nextCursor until it is null). `mean` is the level without the seasonal part (a counter\'s: of its per-second rate), `stddev` the spread deviations are measured in (σ-equivalent), `episode` the anomaly episode going on.',
        params: IdParams,
        querystring: Type.Object(
          {
            metric: Type.Optional(Type.String({ pattern: METRIC_NAME_PATTERN, description: 'only the series of this metric' })),
            limit: Type.Integer({ minimum: 1, maximum: 1000, default: 200, description: 'about this many series per page' }),
            cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,20}$', description: 'the nextCursor of the previous page' }))
          },
          { additionalProperties: false }
        ),
        response: {
          200: Type.Object({ items: Type.Array(BaselineSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          ...problemResponses(400, 401, 404, 429, 503)
        }
      }
    },
    async (request) => {
      const { metric, limit, cursor } = request.query
      return services.baselines(request.principal.organizationId, request.params.id, { metrics: metric === undefined ? undefined : [metric], cursor, limit })
    }
  )

  app.get(
    '/services/:id/series/:series/history',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'getSeriesHistory',
        summary: "A series' values of the last hour, minute by minute, against its baseline's band",
        description:
          "One point per minute in which the series had samples: the minute's last, lowest and highest value scored, and the expected value and the band (expected ± threshold × spread, widened while the baseline is young) at its last sample; `lower` and `upper` are null while the baseline learns. A series id is an incident's `series[].id`, or `series` in baselines and anomalies.",
        params: Type.Object({ id: Uuid, series: Type.String({ pattern: '^[0-9a-f]{16}$' }) }),
        response: { 200: SeriesHistorySchema, ...problemResponses(400, 401, 404, 429, 503) }
      }
    },
    async (request) => services.history(request.principal.organizationId, request.params.id, request.params.series)
  )

  app.get(
    '/services/:id/anomalies',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'listAnomalies',
        summary: 'Anomaly episode marks of the service in the recent window (the last hour at most), newest first',
        description: 'Each item is an episode of one series starting (`kind: "start"`) or first turning critical (`kind: "escalation"`); the anomalous samples in between are not listed.',
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
          200: Type.Object({ items: Type.Array(AnomalySchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
          ...problemResponses(400, 401, 404, 429, 503)
        }
      }
    },
    async (request) => {
      const { since, limit, cursor } = request.query
      const offset = cursor ? Number(cursor) : 0
      const items = await services.anomalies(request.principal.organizationId, request.params.id, {
        since: since === undefined ? 0 : toDate(since).getTime(),
        offset,
        limit: limit + 1
      })
      return { items: items.slice(0, limit), nextCursor: items.length > limit ? String(offset + limit) : null }
    }
  )
}
