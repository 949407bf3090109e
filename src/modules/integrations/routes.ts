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
          'Each series maps to a service (label `service`, else `job`) and a metric (`__name__`, plus the values of the labels chosen in /v1/integrations/prometheus/settings); samples feed the same detection as POST /v1/metrics. 4xx for data Prometheus must drop (malformed body, more series than the plan allows), 429/503 for what it should retry.',
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
      const { reply, ingested } = await integrations.remoteWrite(changeContext(request), plan, request.body)
      if (ingested) app.metrics.countIngestion(ingested)
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
        summary: 'How remote_write series map to metrics',
        response: { 200: PrometheusSettings, ...problemResponses(401, 429) }
      }
    },
    async (request) => ({ extraLabels: await integrations.prometheusLabels(request.principal.organizationId) })
  )

  app.put(
    '/integrations/prometheus/settings',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'setPrometheusSettings',
        summary: 'Choose the labels, besides __name__, that name a distinct metric',
        body: PrometheusSettings,
        response: { 200: PrometheusSettings, ...problemResponses(400, 401, 403, 429) }
      }
    },
    async (request) => ({ extraLabels: await integrations.setPrometheusLabels(changeContext(request), request.body.extraLabels) })
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
