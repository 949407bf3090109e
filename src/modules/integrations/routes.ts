import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { AppError, problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { MAX_DETAILS_BYTES, MAX_DETAILS_KEYS } from '../incidents/lifecycle.js'
import { AlertmanagerBody, AlertmanagerReply, PrometheusSettings } from './schemas.js'

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
          'Each series maps to a service (label `service`, else `job`) and a series: `__name__` plus every other label; samples feed the same detection as POST /v1/metrics. Counters (from the metadata Prometheus sends, else `_total`/`_count`/`_sum`) are scored on their per-second rate; histogram buckets are taken, not scored; time-like gauges never alert. 4xx for data Prometheus must drop (malformed body, more series or samples in one write than the plan allows — found while decoding, new series past the plan\'s active series: 402 after the rest is taken), 429/503 for what it should retry.',
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
          'Each alert maps to an incident with dedupKey = its fingerprint: firing triggers, resolved resolves. Service from label `service`, else `job`; severity from label `severity` (critical|warning, default warning); title from annotation `summary` (first 500 characters), else `alertname`; labels, annotations, generatorURL and startsAt become details. ' +
          `Each alert is applied or refused on its own, in order, and \`results\` says which, by \`index\`: a firing alert whose service is new and past the plan's services is refused (\`plan_limit\`), as is one whose details exceed ${MAX_DETAILS_KEYS} keys or ${MAX_DETAILS_BYTES} bytes of JSON (\`details_too_large\`); the alerts after it are still applied. A resolved alert never registers a service: with no open incident under its fingerprint it is ignored (\`no_open_incident\`). A firing alert that repeats what its incident says writes nothing (\`unchanged\`). ` +
          'The answer is 200 whenever the body is valid, even when every alert is refused: Alertmanager neither retries a 4xx nor reads the body, so a 402 would only turn a per-alert refusal into a failed notification whose status depends on how alerts happened to be grouped; refusals are logged with the request id instead. 400 for a malformed body (dropped by Alertmanager); 429/503 make it retry the whole notification (repeats of alerts already applied are no-ops).',
        body: AlertmanagerBody,
        response: { 200: AlertmanagerReply, ...problemResponses(400, 401, 403, 429, 503) }
      }
    },
    async (request) => {
      const reply = await integrations.alertmanager(changeContext(request), request.body.alerts)
      if (reply.refused > 0) {
        const refusals = reply.results.filter((r) => r.outcome === 'refused').slice(0, 20).map(({ index, fingerprint, code }) => ({ index, fingerprint, code }))
        request.log.warn({ refusals }, `${reply.refused} of ${reply.results.length} Alertmanager alerts refused (the first 20 listed)`)
      }
      return reply
    }
  )
}
