// One incident: facts, acknowledge/resolve, a merged timeline (audit, actions, anomalies) and series charts.
import type { ComponentChildren } from 'preact'
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { ApiError, get, post, withQuery } from '../api'
import { ActionSummary } from '../components/ActionSummary'
import { Empty, ErrorAlert, Loading, Section, SeverityBadge, Time } from '../components/common'
import { SeriesChart, type TimeRange } from '../components/SeriesChart'
import { formatLabels, formatNumber, humanize } from '../format'
import { hasId, isObject } from '../guards'
import { useEvents, useResource } from '../hooks'
import { Link } from '../router'
import { useSession } from '../session'
import { ruleWindows, rulesFor } from '../suppression'
import type { Action, Anomaly, AuditEntry, IncidentDetail, Page, SeriesHistory, SuppressionRule } from '../types'

const MAX_CHARTS = 5

interface TimelineItem {
  key: string
  at: string
  kind: 'audit' | 'action' | 'anomaly'
  body: ComponentChildren
}

function actorOf(entry: AuditEntry): string {
  if (entry.actor.type === 'system') return 'system'
  return `${entry.actor.type === 'api_key' ? 'API key' : 'user'} ${entry.actor.id?.slice(0, 8) ?? ''}`.trim()
}

export function IncidentDetailPage({ id }: { id: string }) {
  const session = useSession()
  const incident = useResource((signal) => get<IncidentDetail>(`/v1/incidents/${encodeURIComponent(id)}`, signal), [id])
  const data = incident.data
  const serviceId = data?.serviceId
  const seriesIds = useMemo(() => new Set((data?.series ?? []).map((series) => series.id)), [data?.series])
  const charted = useMemo(() => (data?.series ?? []).slice(0, MAX_CHARTS), [data?.series])

  const anomalies = useResource(
    (signal) => (serviceId ? get<Page<Anomaly>>(withQuery(`/v1/services/${serviceId}/anomalies`, { limit: 1000 }), signal) : Promise.resolve(null)),
    [serviceId]
  )
  const rules = useResource((signal) => get<Page<SuppressionRule>>('/v1/suppression-rules?limit=200', signal), [])
  const histories = useResource(
    (signal) =>
      serviceId
        ? Promise.all(
            charted.map((series) =>
              get<SeriesHistory>(`/v1/services/${serviceId}/series/${encodeURIComponent(series.id)}/history`, signal).then(
                (history) => ({ history, error: null as unknown }),
                (error: unknown) => ({ history: null, error, series })
              )
            )
          )
        : Promise.resolve([]),
    [serviceId, charted.map((series) => series.id).join(',')]
  )

  useEffect(() => {
    document.title = `${data?.title ?? 'Incident'} · Autopilot`
  }, [data?.title])

  // Live: this incident's changes, its actions, new anomalies of its series (charts refresh at most every 5 s).
  const chartTimer = useRef<ReturnType<typeof setTimeout> | null>(null)
  useEffect(() => () => {
    if (chartTimer.current) clearTimeout(chartTimer.current)
  }, [])
  useEvents((event) => {
    if (event.type === 'reconnected') {
      // Events may have been missed while the stream was down: everything shown is read again.
      if (chartTimer.current) clearTimeout(chartTimer.current)
      chartTimer.current = null
      incident.reload()
      anomalies.reload()
      histories.reload()
      return
    }
    if (event.type.startsWith('incident.') && hasId(event.data) && event.data.id === id) incident.reload()
    if (event.type === 'action.updated' && isObject(event.data) && event.data.incidentId === id) {
      incident.reload()
    }
    if (event.type === 'anomaly.detected' && isObject(event.data)) {
      const series = event.data.series
      if (typeof series === 'string' && seriesIds.has(series) && !chartTimer.current) {
        chartTimer.current = setTimeout(() => {
          chartTimer.current = null
          anomalies.reload()
          histories.reload()
        }, 5000)
      }
    }
  })

  const incidentAnomalies = useMemo(
    () => (anomalies.data?.items ?? []).filter((anomaly) => seriesIds.has(anomaly.series)),
    [anomalies.data, seriesIds]
  )

  const patchAction = (action: Action) =>
    incident.setData((previous) => previous && { ...previous, actions: previous.actions.map((a) => (a.id === action.id ? action : a)) })

  if (incident.error instanceof ApiError && (incident.error.status === 404 || incident.error.status === 400)) {
    return (
      <>
        <h1>Incident not found</h1>
        <p>
          No incident <code>{id}</code> in your organization. <Link href="/incidents">Back to incidents</Link>
        </p>
      </>
    )
  }
  if (!data) {
    return incident.error ? <ErrorAlert error={incident.error} /> : <Loading label="Loading the incident…" />
  }

  const timeline: TimelineItem[] = [
    ...data.timeline.map((entry) => ({
      key: `audit-${entry.id}`,
      at: entry.at,
      kind: 'audit' as const,
      body: (
        <>
          <strong>{entry.action}</strong> <span class="muted">by {actorOf(entry)}</span>
        </>
      )
    })),
    ...data.actions.map((action) => ({
      key: `action-${action.id}`,
      at: action.createdAt,
      kind: 'action' as const,
      body: <ActionSummary action={action} onChanged={patchAction} />
    })),
    ...incidentAnomalies.map((anomaly, index) => ({
      key: `anomaly-${anomaly.series}-${anomaly.at}-${index}`,
      at: anomaly.at,
      kind: 'anomaly' as const,
      body: (
        <>
          <strong>
            {anomaly.kind === 'start' ? 'Anomaly started' : 'Anomaly escalated'}: {anomaly.metric}
          </strong>{' '}
          <code>{formatLabels(anomaly.labels)}</code> <SeverityBadge severity={anomaly.severity} />{' '}
          <span class="muted">
            value {formatNumber(anomaly.value)}, expected {formatNumber(anomaly.expected)}, z {formatNumber(anomaly.zScore, 2)}
            {anomaly.suppressed ? ', suppressed' : ''}
            {anomaly.confirmed ? '' : ', unconfirmed'}
          </span>
        </>
      )
    }))
  ].sort((a, b) => Date.parse(a.at) - Date.parse(b.at))

  return (
    <>
      <p>
        <Link href="/incidents">← Incidents</Link>
      </p>
      <div class="page-head">
        <h1>{data.title}</h1>
      </div>
      <ErrorAlert error={incident.error} />
      <section class="card" aria-label="Incident facts">
        <dl class="facts">
          <div>
            <dt>Status</dt>
            <dd>
              <span class={`badge status-${data.status}`} data-testid="incident-status">
                {data.status}
              </span>
              {data.flapping && <span class="badge badge-warning">flapping</span>}
            </dd>
          </div>
          <div>
            <dt>Severity</dt>
            <dd>
              <SeverityBadge severity={data.severity} />
            </dd>
          </div>
          <div>
            <dt>Service</dt>
            <dd>
              <Link href={`/services/${data.serviceId}`}>{data.service}</Link>
            </dd>
          </div>
          <div>
            <dt>Source</dt>
            <dd>{data.source}</dd>
          </div>
          <div>
            <dt>Opened</dt>
            <dd>
              <Time iso={data.openedAt} />
            </dd>
          </div>
          <div>
            <dt>Acknowledged</dt>
            <dd>
              <Time iso={data.acknowledgedAt} />
            </dd>
          </div>
          <div>
            <dt>Resolved</dt>
            <dd>
              <Time iso={data.resolvedAt} />
              {data.resolvedBy === 'auto' && <span class="muted"> (automatically)</span>}
            </dd>
          </div>
          <div>
            <dt>Anomalies</dt>
            <dd>
              {data.anomalyCount}
              {data.peakZScore !== null && <span class="muted"> (peak z {formatNumber(data.peakZScore, 2)})</span>}
            </dd>
          </div>
          {data.resolutionNote && (
            <div>
              <dt>Resolution note</dt>
              <dd>{data.resolutionNote}</dd>
            </div>
          )}
        </dl>
        {session.can('operator') && data.status !== 'resolved' && (
          <IncidentControls id={data.id} status={data.status} onChanged={() => incident.reload()} />
        )}
      </section>

      <Section title="Series">
        {charted.length === 0 ? (
          <Empty>This incident has no metric series{data.source !== 'detector' ? ` (it came from ${data.source})` : ''}.</Empty>
        ) : histories.loading && !histories.data ? (
          <Loading label="Loading the series…" />
        ) : (
          <div class="charts">
            {(histories.data ?? []).map((entry, index) =>
              entry.history ? (
                <ChartFor key={entry.history.series} history={entry.history} anomalies={incidentAnomalies} rules={rules.data?.items ?? []} service={{ id: data.serviceId, name: data.service }} />
              ) : (
                <div key={index}>
                  <ErrorAlert error={entry.error} />
                </div>
              )
            )}
            {data.series.length > MAX_CHARTS && <p class="hint">Showing the first {MAX_CHARTS} of {data.series.length} series.</p>}
          </div>
        )}
        <ErrorAlert error={anomalies.error} />
      </Section>

      <Section title="Timeline">
        {timeline.length === 0 ? (
          <Empty>Nothing recorded yet.</Empty>
        ) : (
          <ol class="timeline">
            {timeline.map((item) => (
              <li key={item.key}>
                <div>
                  <span class="kind">{humanize(item.kind)}</span>
                  <Time iso={item.at} />
                </div>
                <div>{item.body}</div>
              </li>
            ))}
          </ol>
        )}
      </Section>
    </>
  )
}

function ChartFor({
  history,
  anomalies,
  rules,
  service
}: {
  history: SeriesHistory
  anomalies: Anomaly[]
  rules: SuppressionRule[]
  service: { id: string; name: string }
}) {
  const marks = useMemo(() => anomalies.filter((anomaly) => anomaly.series === history.series), [anomalies, history.series])
  const windows = useMemo<TimeRange[]>(() => {
    const first = history.points[0]
    const last = history.points[history.points.length - 1]
    if (!first || !last) return []
    const from = Date.parse(first.at)
    const to = Date.parse(last.at) + 60_000
    return rulesFor(rules, service, history.metric).flatMap((rule) => ruleWindows(rule, from, to))
  }, [rules, history, service.id, service.name])
  return <SeriesChart history={history} anomalies={marks} suppressions={windows} />
}

function IncidentControls({ id, status, onChanged }: { id: string; status: string; onChanged: () => void }) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [resolving, setResolving] = useState(false)
  const [note, setNote] = useState('')

  async function run(step: () => Promise<unknown>) {
    setBusy(true)
    setError(null)
    try {
      await step()
      setResolving(false)
      setNote('')
      onChanged()
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <div class="controls">
      <div class="row" style={{ marginTop: '0.75rem' }}>
        {status === 'open' && (
          <button type="button" disabled={busy} onClick={() => run(() => post(`/v1/incidents/${id}/acknowledge`))}>
            Acknowledge
          </button>
        )}
        {!resolving && (
          <button type="button" class="secondary" disabled={busy} onClick={() => setResolving(true)}>
            Resolve
          </button>
        )}
      </div>
      {resolving && (
        <form
          class="inline-form"
          onSubmit={(event) => {
            event.preventDefault()
            const trimmed = note.trim()
            void run(() => post(`/v1/incidents/${id}/resolve`, trimmed ? { note: trimmed } : {}))
          }}
        >
          <div class="field">
            <label for="resolve-note">Resolution note (optional)</label>
            <textarea id="resolve-note" maxLength={2000} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
          </div>
          <button type="submit" disabled={busy}>
            Resolve
          </button>
          <button type="button" class="secondary" disabled={busy} onClick={() => setResolving(false)}>
            Cancel
          </button>
        </form>
      )}
      <ErrorAlert error={error} />
    </div>
  )
}
