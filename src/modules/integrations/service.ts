import type { Plan } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import type { ChangeContext } from '../../lib/context.js'
import type { AlertOutcome, AlertService } from '../alerts/service.js'
import type { Sample } from '../ingest/schemas.js'
import type { MetricTypes, SeriesAdmission } from '../ingest/series.js'
import type { IngestService } from '../ingest/service.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { seriesOf, serviceOf } from './mapping.js'
import { decodeWriteRequest } from './remote-write.js'
import type { AlertmanagerAlert } from './schemas.js'

/** An incident title at most, as `POST /v1/alerts` takes it: a longer `summary` annotation is cut. */
const MAX_ALERT_TITLE = 500

/**
 * One Alertmanager alert's line of the answer. `outcome` says what happened; `status` (kept for earlier
 * clients) is the incident's status, else `no_open_incident` or `refused`.
 */
export interface AlertmanagerResult {
  index: number
  fingerprint: string
  outcome: 'applied' | 'refused' | 'ignored'
  code?: string
  detail?: string
  incidentId: string | null
  status: string
}

function resultOf(index: number, fingerprint: string, applied: AlertOutcome): AlertmanagerResult {
  switch (applied.outcome) {
    case 'applied':
      return {
        index,
        fingerprint,
        outcome: 'applied',
        ...(applied.changed ? {} : { code: 'unchanged' }),
        incidentId: applied.incident.id,
        status: applied.incident.status
      }
    case 'ignored':
      return { index, fingerprint, outcome: 'ignored', code: applied.code, incidentId: null, status: applied.code }
    case 'refused':
      return { index, fingerprint, outcome: 'refused', code: applied.error.code, detail: applied.error.message, incidentId: null, status: 'refused' }
  }
}

/** Prometheus remote_write and Alertmanager webhooks, mapped onto ingestion and alerts. */
export function createIntegrationsService(deps: {
  ingest: Pick<IngestService, 'ingest'>
  alerts: Pick<AlertService, 'apply'>
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
    const { maxSeriesPerWrite, maxSamplesPerWrite } = PLAN_LIMITS[plan]
    const { series, metadata } = decodeWriteRequest(body, { series: maxSeriesPerWrite, samples: maxSamplesPerWrite }, plan)
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

  /**
   * Each alert maps to an incident with dedupKey = its fingerprint (firing triggers, resolved resolves) and
   * is applied or refused on its own: one alert past the plan or with oversized details does not stop the
   * others. Errors that are not about one alert (Postgres down) still fail the request, for a retry.
   */
  async function alertmanager(ctx: ChangeContext, alerts: AlertmanagerAlert[]) {
    const results: AlertmanagerResult[] = []
    for (const [index, alert] of alerts.entries()) {
      const applied = await deps.alerts.apply(
        ctx,
        {
          service: serviceOf(alert.labels) ?? 'alertmanager',
          dedupKey: `alertmanager:${alert.fingerprint}`,
          action: alert.status === 'firing' ? 'trigger' : 'resolve',
          title: (alert.annotations?.summary ?? alert.labels.alertname ?? 'Alertmanager alert').slice(0, MAX_ALERT_TITLE),
          severity: alert.labels.severity === 'critical' ? 'critical' : 'warning',
          details: { labels: alert.labels, annotations: alert.annotations ?? {}, generatorURL: alert.generatorURL ?? null, startsAt: alert.startsAt ?? null }
        },
        'alertmanager'
      )
      results.push(resultOf(index, alert.fingerprint, applied))
    }
    const count = (outcome: AlertmanagerResult['outcome']) => results.filter((r) => r.outcome === outcome).length
    return { results, applied: count('applied'), refused: count('refused'), ignored: count('ignored') }
  }

  return { prometheusSettings, remoteWrite, alertmanager }
}
export type IntegrationsService = ReturnType<typeof createIntegrationsService>
