import type { Database } from '../../db/client.js'
import type { Plan } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { ChangeContext } from '../../lib/context.js'
import type { AlertService } from '../alerts/service.js'
import { recordAudit } from '../audit/repository.js'
import type { Sample } from '../ingest/schemas.js'
import type { IngestService } from '../ingest/service.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { metricOf, serviceOf } from './mapping.js'
import { decodeWriteRequest } from './remote-write.js'
import { findMetricLabels, setMetricLabels } from './repository.js'
import type { AlertmanagerAlert } from './schemas.js'

/** Prometheus remote_write and Alertmanager webhooks, mapped onto ingestion and alerts. */
export function createIntegrationsService(deps: { db: Database; ingest: Pick<IngestService, 'ingest'>; alerts: Pick<AlertService, 'handle'> }) {
  const { db } = deps

  /** The labels, besides __name__, whose values name a distinct metric. */
  async function prometheusLabels(organizationId: string): Promise<string[]> {
    return (await findMetricLabels(db, organizationId)) ?? []
  }

  async function setPrometheusLabels(ctx: ChangeContext, extraLabels: string[]): Promise<string[]> {
    return db.transaction(async (tx) => {
      const before = await findMetricLabels(tx, ctx.organizationId, { lock: true })
      const after = await setMetricLabels(tx, ctx.organizationId, extraLabels)
      await recordAudit(tx, ctx, {
        action: 'integration.prometheus_settings_changed',
        resourceType: 'organization',
        resourceId: ctx.organizationId,
        before: { extraLabels: before },
        after: { extraLabels: after }
      })
      return after
    })
  }

  /**
   * One remote_write request: each series maps to a service (label `service`, else `job`) and a metric;
   * their samples feed the same detection as POST /v1/metrics. Series without both are skipped.
   */
  async function remoteWrite(ctx: ChangeContext, plan: Plan, body: Buffer) {
    const series = decodeWriteRequest(body)
    const { maxSeriesPerWrite } = PLAN_LIMITS[plan]
    if (series.length > maxSeriesPerWrite) {
      throw errors.planLimit(`${series.length} series in one write; the ${plan} plan allows ${maxSeriesPerWrite} (lower max_samples_per_send or drop labels)`)
    }
    const allowlist = await prometheusLabels(ctx.organizationId)
    const samples: Sample[] = []
    let skippedSeries = 0
    for (const s of series) {
      const service = serviceOf(s.labels)
      const metric = metricOf(s.labels, allowlist)
      if (!service || !metric) {
        skippedSeries++
        continue
      }
      for (const sample of s.samples) samples.push({ service, metric, value: sample.value, timestamp: sample.timestamp })
    }
    const ingested = samples.length > 0 ? await deps.ingest.ingest(ctx, plan, samples) : null
    return {
      ingested,
      reply: {
        series: series.length,
        accepted: ingested?.accepted ?? 0,
        rejected: ingested?.rejected.length ?? 0,
        skippedSeries,
        anomalies: ingested?.anomalies.length ?? 0,
        incidents: ingested?.incidents.length ?? 0
      }
    }
  }

  /** Each alert maps to an incident with dedupKey = its fingerprint: firing triggers, resolved resolves. */
  async function alertmanager(ctx: ChangeContext, alerts: AlertmanagerAlert[]) {
    const results = []
    for (const alert of alerts) {
      const incident = await deps.alerts.handle(
        ctx,
        {
          service: serviceOf(alert.labels) ?? 'alertmanager',
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
    return results
  }

  return { prometheusLabels, setPrometheusLabels, remoteWrite, alertmanager }
}
export type IntegrationsService = ReturnType<typeof createIntegrationsService>
