import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { eq } from 'drizzle-orm'
import Type from 'typebox'
import { organizations } from '../../db/schema/index.js'
import { recordAudit } from '../audit/repository.js'
import { AppError, errors, problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { createAlertService } from '../alerts/service.js'
import { METRIC_NAME_PATTERN, SERVICE_NAME_PATTERN } from '../services/schemas.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { decodeWriteRequest } from './remote-write.js'
import type { RawSample } from '../ingest/service.js'

const REMOTE_WRITE_BODY_LIMIT = 8 * 1024 * 1024
const SERVICE_NAME = new RegExp(SERVICE_NAME_PATTERN)

const METRIC_NAME = new RegExp(METRIC_NAME_PATTERN)
const LABEL_NAME = '^[a-zA-Z_][a-zA-Z0-9_]{0,63}$'

/**
 * The metric a series feeds: `__name__`, plus the values of the organization's allow-listed labels
 * (sorted by label), e.g. `http_requests_total.instance_a-80`. Undefined when no valid name results.
 */
export function metricOf(labels: Record<string, string | undefined>, allowlist: string[]): string | undefined {
  const name = labels.__name__
  if (!name) return undefined
  const parts = [...allowlist]
    .sort()
    .filter((label) => labels[label] !== undefined)
    .map((label) => `${label}_${labels[label]!.replace(/[^A-Za-z0-9_:-]+/g, '-')}`)
  const metric = [name, ...parts].join('.')
  return METRIC_NAME.test(metric) ? metric : undefined
}

/** The service a series or alert belongs to: label `service`, else `job`, made a valid service name. */
export function serviceOf(labels: Record<string, string | undefined>): string | undefined {
  const raw = labels.service ?? labels.job
  if (!raw) return undefined
  const name = raw.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 63)
  return SERVICE_NAME.test(name) ? name : undefined
}

const AlertmanagerAlert = Type.Object(
  {
    status: Type.Enum(['firing', 'resolved'] as const),
    labels: Type.Record(Type.String(), Type.String()),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
    startsAt: Type.Optional(Type.String()),
    endsAt: Type.Optional(Type.String()),
    generatorURL: Type.Optional(Type.String()),
    fingerprint: Type.String({ minLength: 1, maxLength: 128 })
  },
  // Alertmanager owns this format and may add fields: unknown ones are ignored here, not refused.
  { additionalProperties: true }
)
const AlertmanagerBody = Type.Object(
  { version: Type.String(), status: Type.Optional(Type.String()), alerts: Type.Array(AlertmanagerAlert, { maxItems: 1000 }) },
  { additionalProperties: true }
)

export const integrationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const alerts = createAlertService({ db: app.db, resolver: app.serviceResolver, publish: app.publishEvents, runbooks: app.actions })
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
      const series = decodeWriteRequest(request.body)
      const plan = await app.plans.planOf(request.principal.organizationId)
      const { maxSeriesPerWrite } = PLAN_LIMITS[plan]
      if (series.length > maxSeriesPerWrite) {
        throw errors.planLimit(`${series.length} series in one write; the ${plan} plan allows ${maxSeriesPerWrite} (lower max_samples_per_send or drop labels)`)
      }
      const [org] = await app.db
        .select({ allowlist: organizations.metricLabelAllowlist })
        .from(organizations)
        .where(eq(organizations.id, request.principal.organizationId))
      const samples: RawSample[] = []
      let skippedSeries = 0
      for (const s of series) {
        const service = serviceOf(s.labels)
        const metric = metricOf(s.labels, org?.allowlist ?? [])
        if (!service || !metric) {
          skippedSeries++
          continue
        }
        for (const sample of s.samples) samples.push({ service, metric, value: sample.value, timestamp: sample.timestamp })
      }
      const result = samples.length > 0 ? await app.ingest.ingest(changeContext(request), plan, samples) : null
      if (result) app.metrics.countIngestion(result)
      return {
        series: series.length,
        accepted: result?.accepted ?? 0,
        rejected: result?.rejected.length ?? 0,
        skippedSeries,
        anomalies: result?.anomalies.length ?? 0,
        incidents: result?.incidents.length ?? 0
      }
    }
  )

  const Settings = Type.Object(
    {
      extraLabels: Type.Array(Type.String({ pattern: LABEL_NAME }), {
        maxItems: 5,
        uniqueItems: true,
        description: 'labels besides __name__ that name a distinct metric, e.g. ["instance"]'
      })
    },
    { additionalProperties: false }
  )

  app.get(
    '/integrations/prometheus/settings',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'getPrometheusSettings',
        summary: 'How remote_write series map to metrics',
        response: { 200: Settings, ...problemResponses(401, 429) }
      }
    },
    async (request) => {
      const [org] = await app.db
        .select({ extraLabels: organizations.metricLabelAllowlist })
        .from(organizations)
        .where(eq(organizations.id, request.principal.organizationId))
      return { extraLabels: org?.extraLabels ?? [] }
    }
  )

  app.put(
    '/integrations/prometheus/settings',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'setPrometheusSettings',
        summary: 'Choose the labels, besides __name__, that name a distinct metric',
        body: Settings,
        response: { 200: Settings, ...problemResponses(400, 401, 403, 429) }
      }
    },
    async (request) => {
      const ctx = changeContext(request)
      return app.db.transaction(async (tx) => {
        const [before] = await tx
          .select({ extraLabels: organizations.metricLabelAllowlist })
          .from(organizations)
          .where(eq(organizations.id, ctx.organizationId))
          .for('update')
        const [after] = await tx
          .update(organizations)
          .set({ metricLabelAllowlist: request.body.extraLabels })
          .where(eq(organizations.id, ctx.organizationId))
          .returning({ extraLabels: organizations.metricLabelAllowlist })
        await recordAudit(tx, ctx, {
          action: 'integration.prometheus_settings_changed',
          resourceType: 'organization',
          resourceId: ctx.organizationId,
          before,
          after
        })
        return after!
      })
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
    async (request) => {
      const ctx = changeContext(request)
      const results = []
      for (const alert of request.body.alerts) {
        const service = serviceOf(alert.labels) ?? 'alertmanager'
        const incident = await alerts.handle(
          ctx,
          {
            service,
            dedupKey: `alertmanager:${alert.fingerprint}`,
            action: alert.status === 'firing' ? 'trigger' : 'resolve',
            title: alert.annotations?.summary ?? alert.labels.alertname ?? 'Alertmanager alert',
            severity: alert.labels.severity === 'critical' ? 'critical' : 'warning',
            details: { labels: alert.labels, annotations: alert.annotations ?? {}, generatorURL: alert.generatorURL ?? null, startsAt: alert.startsAt ?? null }
          },
          'alertmanager'
        )
        results.push({ fingerprint: alert.fingerprint, incidentId: incident?.id ?? null, status: incident?.status ?? 'no_open_incident' })
      }
      return { results }
    }
  )
}
