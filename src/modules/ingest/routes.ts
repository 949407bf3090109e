import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { MetricsBody, MetricsReply } from './schemas.js'

export const ingestRoutes: FastifyPluginAsyncTypebox = async (app) => {

  app.post(
    '/metrics',
    {
      config: { minRole: 'agent', idempotent: {} },
      schema: {
        tags: ['ingestion'],
        operationId: 'ingestMetrics',
        summary: 'Ingest 1..1000 metric samples; bad samples are rejected one by one, the rest are scored',
        description:
          'Per-sample rejection codes: non_finite_value, value_out_of_range (|value| over 1e30), invalid_service_name, invalid_metric_name, invalid_timestamp, timestamp_in_future, plan_limit (unknown service beyond the plan). 429 when the organization exceeds its samples per minute. `anomalies` lists anomaly episodes starting (`kind: "start"`) or first turning critical (`kind: "escalation"`) in this batch: consecutive anomalous samples of a series are one episode, listed once. `learning` counts samples of baselines still warming up (fewer than minSamples, or less than minSpanSeconds of history).',
        body: MetricsBody,
        response: { 202: MetricsReply, ...problemResponses(400, 401, 403, 429, 503) }
      }
    },
    async (request, reply) => {
      const plan = await app.services.plans.planOf(request.principal.organizationId)
      const result = await app.services.ingest.ingest(changeContext(request), plan, request.body.samples)
      app.metrics.countIngestion(result)
      return reply.code(202).send(result)
    }
  )
}
