import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { AppError, problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { AlertmanagerBody, PrometheusSettings } from './schemas.js'

const REMOTE_WRITE_BODY_LIMIT = 8 * 1024 * 1024

export const integrationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { integrations } = app.services
  app.addContentTypeParser('application/x-protobuf', { parseAs: 'buffer', bodyLimit: REMOTE_WRITE_BODY_LIMIT }, (_request, body, done) =>
    done(null, body)
  )
  const tags = ['integrations']

  app.post(
    '/integrations/prometheus/write',
    {
      config: { minRole: 'agent' },
      bodyLimit: REMOTE_WRITE_BODY_LIMIT,
      schema: {
        tags,
        operationId: 'prometheusRemoteWrite',
        summary: 'Prometheus remote_write 1.0 (snappy-compressed protobuf WriteRequest)',
        description:
          'Each series maps to a service (label `service`, else `job`) and a series: `__name__` plus every other label; samples feed the same detection as POST /v1/metrics. Counters (from the metadata Prometheus sends, else `_total`/`_count`/`_sum`) are scored on their per-second rate; histogram buckets are taken, not scored; time-like gauges never alert. 4xx for data Prometheus must drop (malformed body, more series in one write than the plan allows, new series past the plan\'s active series: 402 after the rest is taken), 429/503 for what it should retry.',
        response: {
          200: Type.Object({
            series: Type.Integer(),
            accepted: Type.Integer(),
            rejected: Type.Integer(),
            skippedSeries: Type.Integer({ description: 'series without a usable service or metric label' }),
            anomalies: Type.Integer(),
            incidents: Type.Integer()
          }),
          ...problemResponses(400, 401, 402, 403, 415, 429, 503)
        }
      }
    },
    async (request) => {
      if (!Buffer.isBuffer(request.body)) throw new AppError(415, 'unsupported_media_type', 'send Content-Type: application/x-protobuf')
      const plan = await app.services.plans.planOf(request.principal.organizationId)
      const { reply, ingested, refusal } = await integrations.remoteWrite(changeContext(request), plan, request.body)
      if (ingested) app.metrics.countIngestion(ingested)
      if (refusal) throw refusal
      return reply
    }
  )

  app.get(
    '/integrations/prometheus/settings',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'getPrometheusSettings',
        summary: 'How remote_write series are read, and the active series against the plan',
        description:
          'A series is its metric name plus its full label set (less `__name__` and the label that chose the service). `extraLabels` is retired (always empty): every label already names a distinct series.',
        response: { 200: PrometheusSettings, ...problemResponses(401, 429) }
      }
    },
    async (request) => {
      const plan = await app.services.plans.planOf(request.principal.organizationId)
      return integrations.prometheusSettings(request.principal.organizationId, plan)
    }
  )

  app.put(
    '/integrations/prometheus/settings',
    {
      config: { minRole: 'admin' },
      // Retired, so not documented: it only tells a client of the old allow-list that it is gone.
      schema: { hide: true }
    },
    async () => {
      throw new AppError(
        410,
        'gone',
        'the label allow-list is retired: a series is its metric name plus its full label set, limited by the plan\'s active series (GET this path to see them)'
      )
    }
  )

  app.post(
    '/integrations/alertmanager',
    {
      config: { minRole: 'agent' },
      bodyLimit: 1024 * 1024,
      schema: {
        tags,
        operationId: 'alertmanagerWebhook',
        summary: 'Alertmanager webhook receiver (payload version 4)',
        description:
          'Each alert maps to an incident with dedupKey = its fingerprint: firing triggers, resolved resolves. Service from label `service`, else `job`; severity from label `severity` (critical|warning, default warning); annotations become details.',
        body: AlertmanagerBody,
        response: {
          200: Type.Object({
            results: Type.Array(Type.Object({ fingerprint: Type.String(), incidentId: Type.Union([Type.String(), Type.Null()]), status: Type.String() }))
          }),
          ...problemResponses(400, 401, 402, 403, 429, 503)
        }
      }
    },
    async (request) => ({ results: await integrations.alertmanager(changeContext(request), request.body.alerts) })
  )
}
