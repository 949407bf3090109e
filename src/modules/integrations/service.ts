import type { Plan } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import type { ChangeContext } from '../../lib/context.js'
import type { AlertService } from '../alerts/service.js'
import type { Sample } from '../ingest/schemas.js'
import type { MetricTypes, SeriesAdmission } from '../ingest/series.js'
import type { IngestService } from '../ingest/service.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { seriesOf, serviceOf } from './mapping.js'
import { decodeWriteRequest } from './remote-write.js'
import type { AlertmanagerAlert } from './schemas.js'

/** Prometheus remote_write and Alertmanager webhooks, mapped onto ingestion and alerts. */
export function createIntegrationsService(deps: {
  ingest: Pick<IngestService, 'ingest'>
  alerts: Pick<AlertService, 'handle'>
  metricTypes: MetricTypes
  admission: Pick<SeriesAdmission, 'activeOf'>
  clock: Clock
}) {
  /** How remote_write series are read, and the organization's active series against its plan. */
  async function prometheusSettings(organizationId: string, plan: Plan) {
    return {
      activeSeries: await deps.admission.activeOf(organizationId, deps.clock.now().getTime()),
      activeSeriesLimit: PLAN_LIMITS[plan].activeSeries,
      extraLabels: [] as string[]
    }
  }

  /**
   * One remote_write request: each series maps to a service (label `service`, else `job`) and a series
   * (`__name__` plus its other labels); their samples feed the same detection as POST /v1/metrics. Series
   * without both are skipped. Metadata (metric types) is recorded for the organization. New series past the
   * plan's active-series limit are refused: `refusal` is the 402 to answer once the rest is taken, so
   * Prometheus logs why (and does not resend what was taken).
   */
  async function remoteWrite(ctx: ChangeContext, plan: Plan, body: Buffer) {
    const { series, metadata } = decodeWriteRequest(body)
    const { maxSeriesPerWrite } = PLAN_LIMITS[plan]
    if (series.length > maxSeriesPerWrite) {
      throw errors.planLimit(`${series.length} series in one write; the ${plan} plan allows ${maxSeriesPerWrite} (lower max_samples_per_send or drop labels)`)
    }
    if (metadata.size > 0) await deps.metricTypes.record(ctx.organizationId, metadata, deps.clock.now().getTime())
    const samples: Sample[] = []
    let skippedSeries = 0
    for (const s of series) {
      const mapped = seriesOf(s.labels)
      if (!mapped) {
        skippedSeries++
        continue
      }
      for (const sample of s.samples) {
        samples.push({ service: mapped.service, metric: mapped.metric, labels: mapped.labels, value: sample.value, timestamp: sample.timestamp })
      }
    }
    const ingested = samples.length > 0 ? await deps.ingest.ingest(ctx, plan, samples) : null
    const overLimit = ingested?.rejected.filter((r) => r.code === 'series_limit').length ?? 0
    const refusal =
      overLimit > 0
        ? errors.planLimit(
            `${overLimit} samples of new series refused: the ${plan} plan allows ${PLAN_LIMITS[plan].activeSeries} active series (series with a sample in the last hour); ` +
              `the other ${ingested!.accepted} samples were taken. Drop series or labels (write_relabel_configs), or upgrade.`
          )
        : null
    return {
      ingested,
      refusal,
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

  return { prometheusSettings, remoteWrite, alertmanager }
}
export type IntegrationsService = ReturnType<typeof createIntegrationsService>
