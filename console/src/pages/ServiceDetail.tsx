// One service: detection settings (admin+), baselines, and "Try these settings" (backtest, operator+).
import { useEffect, useState } from 'preact/hooks'
import { ApiError, get, patch, post, withQuery } from '../api'
import { DataTable } from '../components/DataTable'
import { ErrorAlert, Loadable, Loading, Section, SeverityBadge, Time } from '../components/common'
import { formatLabels, formatNumber } from '../format'
import { useResource } from '../hooks'
import { Link } from '../router'
import { useSession } from '../session'
import type { BacktestReply, BacktestRequest, BacktestSample, Baseline, Detection, Direction, Page, Seasonality, SeriesHistory, Service } from '../types'

// --- the detection form ---

interface NumberField {
  name: 'zThreshold' | 'minSamples' | 'minSpanSeconds' | 'quietPeriodSeconds' | 'confirmSeconds' | 'openAfterWarnings' | 'warningWindowSeconds'
  label: string
  min: number
  max: number
  integer: boolean
  hint: string
}

const NUMBER_FIELDS: NumberField[] = [
  { name: 'zThreshold', label: 'z threshold', min: 0.5, max: 100, integer: false, hint: 'deviations (σ) from the baseline that count as anomalous' },
  { name: 'minSamples', label: 'Minimum samples', min: 2, max: 100000, integer: true, hint: 'before a baseline is ready' },
  { name: 'minSpanSeconds', label: 'Minimum span (s)', min: 0, max: 604800, integer: true, hint: 'of history before a baseline is ready' },
  { name: 'quietPeriodSeconds', label: 'Quiet period (s)', min: 1, max: 604800, integer: true, hint: 'without anomalies before an incident resolves' },
  { name: 'confirmSeconds', label: 'Confirm after (s)', min: 0, max: 86400, integer: true, hint: 'an episode pages once it lasted this long (0: at once)' },
  { name: 'openAfterWarnings', label: 'Open after warnings', min: 1, max: 1000, integer: true, hint: 'warnings within the window that open an incident' },
  { name: 'warningWindowSeconds', label: 'Warning window (s)', min: 10, max: 3600, integer: true, hint: 'window in which warnings are counted' }
]

interface MetricRow {
  key: number
  name: string
  direction: Direction
  zThreshold: string
}

interface DetectionForm {
  numbers: Record<NumberField['name'], string>
  seasonality: Seasonality
  metrics: MetricRow[]
}

let rowKey = 0
const METRIC_NAME = /^[A-Za-z_:][A-Za-z0-9_:.-]{0,127}$/

function formOf(detection: Detection): DetectionForm {
  const numbers = {} as DetectionForm['numbers']
  for (const field of NUMBER_FIELDS) {
    const value = detection[field.name]
    numbers[field.name] = value === undefined ? '' : String(value)
  }
  return {
    numbers,
    seasonality: detection.seasonality,
    metrics: Object.entries(detection.metrics).map(([name, m]) => ({
      key: ++rowKey,
      name,
      direction: (['up', 'down', 'both'].includes(m.direction) ? m.direction : 'both') as Direction,
      zThreshold: m.zThreshold === undefined ? '' : String(m.zThreshold)
    }))
  }
}

/** The settings to send, or the first problem (empty confirmSeconds is left out: the stored value stays). */
function detectionOf(form: DetectionForm): { detection: Partial<Detection> } | { problem: string } {
  const detection: Partial<Detection> = { seasonality: form.seasonality, metrics: {} }
  for (const field of NUMBER_FIELDS) {
    const text = form.numbers[field.name].trim()
    if (text === '') {
      if (field.name === 'confirmSeconds') continue
      return { problem: `${field.label}: enter a number.` }
    }
    const value = Number(text)
    if (!Number.isFinite(value) || (field.integer && !Number.isInteger(value))) return { problem: `${field.label}: enter ${field.integer ? 'a whole number' : 'a number'}.` }
    if (value < field.min || value > field.max) return { problem: `${field.label}: between ${field.min} and ${field.max}.` }
    detection[field.name] = value
  }
  const metrics: Detection['metrics'] = {}
  for (const row of form.metrics) {
    const name = row.name.trim()
    if (!name) continue
    if (!METRIC_NAME.test(name)) return { problem: `Metric "${name}": letters, digits, _ : . - (not starting with a digit).` }
    const entry: Detection['metrics'][string] = { direction: row.direction }
    if (row.zThreshold.trim()) {
      const z = Number(row.zThreshold)
      if (!Number.isFinite(z) || z < 0.5 || z > 100) return { problem: `Metric "${name}": z threshold between 0.5 and 100.` }
      entry.zThreshold = z
    }
    metrics[name] = entry
  }
  detection.metrics = metrics
  return { detection }
}

// --- backtest history ---

const HISTORY_CONCURRENCY = 4
const MAX_HISTORY_SERIES = 100

/** `task` over `items`, at most `limit` at a time; stops starting new ones after the first failure. */
async function mapLimited<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length)
  let next = 0
  let failed = false
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++
      try {
        results[index] = await task(items[index]!)
      } catch (err) {
        failed = true
        throw err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

interface HistorySamples {
  samples: BacktestSample[]
  /** Series replayed (one per metric). */
  series: number
  /** Further series of the replayed metrics (or over the cap), left out. */
  skipped: number
  /** Counter metrics left out: their history holds per-second rates, which the backtest would rate again. */
  counters: string[]
}

/** One series per metric (the backtest reads samples by metric name, without labels) from the history endpoint. */
async function historySamples(serviceId: string, baselines: Baseline[]): Promise<HistorySamples> {
  const counters = new Set<string>()
  const byMetric = new Map<string, Baseline>()
  for (const baseline of baselines) {
    if (baseline.kind === 'counter') counters.add(baseline.metric)
    else if (!byMetric.has(baseline.metric)) byMetric.set(baseline.metric, baseline)
  }
  const eligible = baselines.filter((baseline) => baseline.kind !== 'counter').length
  const chosen = [...byMetric.values()].slice(0, MAX_HISTORY_SERIES)
  const histories = await mapLimited(chosen, HISTORY_CONCURRENCY, (baseline) =>
    get<SeriesHistory>(`/v1/services/${serviceId}/series/${encodeURIComponent(baseline.series)}/history`)
  )
  const samples: BacktestSample[] = []
  for (const history of histories) {
    if (history.kind === 'counter') {
      counters.add(history.metric)
      continue
    }
    for (const point of history.points) {
      if (point.value !== null) samples.push({ metric: history.metric, value: point.value, timestamp: point.at })
    }
  }
  return { samples, series: chosen.length, skipped: eligible - chosen.length, counters: [...counters].sort() }
}

function historyNote(built: HistorySamples): string {
  const parts = [`Replayed ${built.samples.length} points of ${built.series} series (one per metric, from the last hour)`]
  if (built.skipped > 0) parts.push(`${built.skipped} more series of the same metrics left out`)
  if (built.counters.length > 0) parts.push(countersLeftOut(built.counters))
  return `${parts.join('; ')}.`
}

function countersLeftOut(counters: string[]): string {
  const names = counters.length > 5 ? `${counters.slice(0, 5).join(', ')} and ${counters.length - 5} more` : counters.join(', ')
  return `counter metric${counters.length === 1 ? '' : 's'} left out (${names}): the history holds their per-second rates, which the backtest would turn into rates again; replay their raw values from a CSV`
}

async function loadBaselines(serviceId: string, signal: AbortSignal): Promise<Baseline[]> {
  const all: Baseline[] = []
  let cursor: string | null = null
  for (let page = 0; page < 10; page++) {
    const reply: Page<Baseline> = await get<Page<Baseline>>(withQuery(`/v1/services/${serviceId}/baselines`, { limit: 200, cursor }), signal)
    all.push(...reply.items)
    cursor = reply.nextCursor
    if (!cursor) break
  }
  return all
}

export function ServiceDetailPage({ id }: { id: string }) {
  const session = useSession()
  const service = useResource((signal) => get<Service>(`/v1/services/${encodeURIComponent(id)}`, signal), [id])
  const baselines = useResource((signal) => loadBaselines(id, signal), [id])
  const [form, setForm] = useState<DetectionForm | null>(null)
  const [saving, setSaving] = useState(false)
  const [saveError, setSaveError] = useState<unknown>(null)
  const [saved, setSaved] = useState(false)

  useEffect(() => {
    if (service.data) setForm(formOf(service.data.detection))
  }, [service.data])
  useEffect(() => {
    document.title = `${service.data?.name ?? 'Service'} · Autopilot`
  }, [service.data?.name])

  if (service.error instanceof ApiError && (service.error.status === 404 || service.error.status === 400)) {
    return (
      <>
        <h1>Service not found</h1>
        <p>
          <Link href="/services">Back to services</Link>
        </p>
      </>
    )
  }
  if (!service.data || !form) return service.error ? <ErrorAlert error={service.error} /> : <Loading label="Loading the service…" />

  const data = service.data
  const canSave = session.can('admin')
  const built = detectionOf(form)

  async function save(event: Event) {
    event.preventDefault()
    if ('problem' in built) return setSaveError(built.problem)
    setSaving(true)
    setSaveError(null)
    setSaved(false)
    try {
      const updated = await patch<Service>(`/v1/services/${id}`, { detection: built.detection })
      service.setData(() => updated)
      setSaved(true)
    } catch (err) {
      setSaveError(err)
    } finally {
      setSaving(false)
    }
  }

  const setNumber = (name: NumberField['name'], value: string) => {
    setSaved(false)
    setForm((previous) => previous && { ...previous, numbers: { ...previous.numbers, [name]: value } })
  }
  const setRow = (key: number, change: Partial<MetricRow>) =>
    setForm((previous) => previous && { ...previous, metrics: previous.metrics.map((row) => (row.key === key ? { ...row, ...change } : row)) })

  return (
    <>
      <p>
        <Link href="/services">← Services</Link>
      </p>
      <h1>{data.name}</h1>
      <section class="card" aria-label="Service facts">
        <dl class="facts">
          <div>
            <dt>Environment</dt>
            <dd>{data.environment ?? '–'}</dd>
          </div>
          <div>
            <dt>Description</dt>
            <dd>{data.description ?? '–'}</dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd>
              <Time iso={data.createdAt} />
            </dd>
          </div>
          <div>
            <dt>Updated</dt>
            <dd>
              <Time iso={data.updatedAt} />
            </dd>
          </div>
          <div>
            <dt>Incidents</dt>
            <dd>
              <Link href={`/incidents?service=${encodeURIComponent(data.name)}`}>View incidents</Link>
            </dd>
          </div>
        </dl>
      </section>

      <Section title="Detection settings">
        <form onSubmit={save} aria-label="Detection settings">
          <fieldset disabled={!canSave && !session.can('operator')} class="plain">
            <div class="grid">
              {NUMBER_FIELDS.map((field) => (
                <div class="field" key={field.name}>
                  <label for={`d-${field.name}`}>{field.label}</label>
                  <input
                    id={`d-${field.name}`}
                    type="number"
                    inputMode="decimal"
                    min={field.min}
                    max={field.max}
                    step={field.integer ? 1 : 'any'}
                    placeholder={field.name === 'confirmSeconds' ? 'unchanged' : undefined}
                    value={form.numbers[field.name]}
                    onInput={(e) => setNumber(field.name, e.currentTarget.value)}
                    aria-describedby={`d-${field.name}-hint`}
                  />
                  <span class="hint" id={`d-${field.name}-hint`}>
                    {field.hint}
                  </span>
                </div>
              ))}
              <div class="field">
                <label for="d-seasonality">Seasonality</label>
                <select
                  id="d-seasonality"
                  value={form.seasonality}
                  onChange={(e) => {
                    const seasonality = e.currentTarget.value as Seasonality
                    setForm((previous) => previous && { ...previous, seasonality })
                  }}
                >
                  <option value="auto">auto</option>
                  <option value="none">none</option>
                  <option value="daily">daily</option>
                  <option value="weekly">weekly</option>
                </select>
                <span class="hint">learned daily/weekly shape</span>
              </div>
            </div>
            <h3>Per-metric overrides</h3>
            {form.metrics.length === 0 && <p class="muted">None: every metric uses the settings above, alerting in both directions.</p>}
            {form.metrics.map((row, index) => (
              <div class="inline-form" key={row.key}>
                <div class="field">
                  <label for={`m-name-${row.key}`}>Metric {index + 1}</label>
                  <input id={`m-name-${row.key}`} value={row.name} onInput={(e) => setRow(row.key, { name: e.currentTarget.value })} />
                </div>
                <div class="field">
                  <label for={`m-dir-${row.key}`}>Direction</label>
                  <select id={`m-dir-${row.key}`} value={row.direction} onChange={(e) => setRow(row.key, { direction: e.currentTarget.value as Direction })}>
                    <option value="both">both</option>
                    <option value="up">up only</option>
                    <option value="down">down only</option>
                  </select>
                </div>
                <div class="field">
                  <label for={`m-z-${row.key}`}>z threshold</label>
                  <input
                    id={`m-z-${row.key}`}
                    type="number"
                    step="any"
                    min={0.5}
                    max={100}
                    placeholder="service's"
                    value={row.zThreshold}
                    onInput={(e) => setRow(row.key, { zThreshold: e.currentTarget.value })}
                  />
                </div>
                <button
                  type="button"
                  class="danger"
                  aria-label={`Remove metric ${row.name || index + 1}`}
                  onClick={() => setForm((previous) => previous && { ...previous, metrics: previous.metrics.filter((r) => r.key !== row.key) })}
                >
                  Remove
                </button>
              </div>
            ))}
            <p>
              <button
                type="button"
                class="secondary"
                onClick={() =>
                  setForm((previous) => previous && { ...previous, metrics: [...previous.metrics, { key: ++rowKey, name: '', direction: 'both', zThreshold: '' }] })
                }
              >
                Add metric override
              </button>
            </p>
          </fieldset>
          {'problem' in built && <p class="hint">{built.problem}</p>}
          <ErrorAlert error={saveError} />
          {saved && (
            <p class="alert alert-info" role="status">
              Settings saved.
            </p>
          )}
          {canSave ? (
            <div class="row">
              <button type="submit" disabled={saving || 'problem' in built}>
                {saving ? 'Saving…' : 'Save settings'}
              </button>
              <button type="button" class="secondary" onClick={() => setForm(formOf(data.detection))}>
                Reset to saved
              </button>
            </div>
          ) : (
            <p class="hint">Saving settings needs the admin role; operators can still try them below.</p>
          )}
        </form>
      </Section>

      {session.can('operator') && (
        <Backtest serviceId={id} detection={'detection' in built ? built.detection : null} problem={'problem' in built ? built.problem : null} baselines={baselines.data ?? []} />
      )}

      <Section title="Baselines">
        <ErrorAlert error={baselines.error} />
        <Loadable
          loading={baselines.loading && !baselines.data}
          loadingLabel="Loading baselines…"
          empty={(baselines.data ?? []).length === 0}
          emptyText="No series yet."
        >
          <DataTable
            columns={['Metric', 'Labels', 'Kind', 'State', { label: 'Mean', num: true }, { label: 'Std dev', num: true }, { label: 'Samples', num: true }, 'Episode', 'Updated']}
          >
            {(baselines.data ?? []).map((baseline) => (
              <tr key={baseline.series}>
                <td>{baseline.metric}</td>
                <td>
                  <code>{formatLabels(baseline.labels)}</code>
                </td>
                <td>
                  {baseline.kind}
                  {baseline.seasonal ? ' (seasonal)' : ''}
                </td>
                <td>{baseline.state}</td>
                <td class="num">{formatNumber(baseline.mean)}</td>
                <td class="num">{formatNumber(baseline.stddev)}</td>
                <td class="num">{baseline.samples}</td>
                <td>
                  {baseline.episode ? (
                    <>
                      <SeverityBadge severity={baseline.episode.severity} /> since <Time iso={baseline.episode.startedAt} />
                    </>
                  ) : (
                    '–'
                  )}
                </td>
                <td class="nowrap">
                  <Time iso={baseline.updatedAt} />
                </td>
              </tr>
            ))}
          </DataTable>
        </Loadable>
      </Section>
    </>
  )
}

function Backtest({
  serviceId,
  detection,
  problem,
  baselines
}: {
  serviceId: string
  detection: Partial<Detection> | null
  problem: string | null
  baselines: Baseline[]
}) {
  const [source, setSource] = useState<'history' | 'csv'>('history')
  const [csv, setCsv] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [result, setResult] = useState<BacktestReply | null>(null)
  const [note, setNote] = useState<string | null>(null)
  const counterSeries = baselines.filter((baseline) => baseline.kind === 'counter').length

  async function run(event: Event) {
    event.preventDefault()
    if (!detection) return setError(problem)
    setBusy(true)
    setError(null)
    setResult(null)
    setNote(null)
    try {
      const body: BacktestRequest = { detection }
      if (source === 'csv') {
        if (!csv.trim()) throw new Error('Paste or upload a CSV first.')
        body.csv = csv
      } else {
        if (baselines.length === 0) throw new Error('This service has no series yet: use a CSV.')
        const built = await historySamples(serviceId, baselines)
        if (built.samples.length === 0) {
          const why = built.counters.length > 0 ? `; ${countersLeftOut(built.counters)}` : ''
          throw new Error(`No samples to replay from the last hour${why}. Use a CSV.`)
        }
        body.samples = built.samples
        setNote(historyNote(built))
      }
      setResult(await post<BacktestReply>(`/v1/services/${serviceId}/backtest`, body))
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <Section title="Try these settings">
      <p class="muted">Replays history through detection with the settings above (saved or not) and shows what would have happened. Nothing live is touched.</p>
      <form onSubmit={run}>
        <fieldset>
          <legend>History to replay</legend>
          <div class="row">
            <label class="checkbox">
              <input type="radio" name="bt-source" checked={source === 'history'} onChange={() => setSource('history')} />
              This service's last hour ({baselines.length} series
              {counterSeries > 0 ? `; ${counterSeries} counter series left out: their history holds rates, replay counters from a CSV` : ''})
            </label>
            <label class="checkbox">
              <input type="radio" name="bt-source" checked={source === 'csv'} onChange={() => setSource('csv')} />
              CSV
            </label>
          </div>
          {source === 'csv' && (
            <div class="field" style={{ marginTop: '0.5rem' }}>
              <label for="bt-csv">CSV lines: timestamp,value[,metric]</label>
              <textarea id="bt-csv" rows={6} value={csv} placeholder="2024-05-01T10:00:00Z,12.5,latency_ms" onInput={(e) => setCsv(e.currentTarget.value)} />
              <label for="bt-file">Or upload a CSV file</label>
              <input
                id="bt-file"
                type="file"
                accept=".csv,text/csv,text/plain"
                onChange={async (e) => {
                  const file = e.currentTarget.files?.[0]
                  if (file) setCsv(await file.text())
                }}
              />
            </div>
          )}
        </fieldset>
        {problem && <p class="hint">{problem}</p>}
        <p>
          <button type="submit" disabled={busy || !detection}>
            {busy ? 'Running…' : 'Run backtest'}
          </button>
        </p>
      </form>
      <ErrorAlert error={error} />
      {note && <p class="muted">{note}</p>}
      {result && <BacktestResult result={result} />}
    </Section>
  )
}

function BacktestResult({ result }: { result: BacktestReply }) {
  const c = result.counts
  return (
    <div aria-live="polite" data-testid="backtest-result">
      <p>
        {result.rows} rows of {result.metrics} metric{result.metrics === 1 ? '' : 's'}
        {result.from && result.to && (
          <>
            {' '}
            from <Time iso={result.from} /> to <Time iso={result.to} />
          </>
        )}
        ; {result.learning} while baselines learned, {result.stale} stale.
      </p>
      <p>
        <strong>{c.episodes}</strong> anomaly episodes ({c.escalations} escalated); <strong>{c.incidentsOpened}</strong> incidents opened,{' '}
        {c.incidentsEscalated} escalated, {c.incidentsReopened} reopened, {c.incidentsResolved} resolved.
      </p>
      <h3>Incidents it would have opened</h3>
      <Loadable empty={result.incidents.length === 0} emptyText="None.">
        <DataTable columns={['Opened', 'Severity', 'Metrics', { label: 'Anomalies', num: true }, { label: 'Peak z', num: true }, 'Resolved', 'Flapping']}>
          {result.incidents.map((incident, index) => (
            <tr key={index}>
              <td class="nowrap">
                <Time iso={incident.openedAt} />
              </td>
              <td>
                <SeverityBadge severity={incident.severity} />
              </td>
              <td>{incident.metrics.join(', ')}</td>
              <td class="num">{incident.anomalyCount}</td>
              <td class="num">{formatNumber(incident.peakZScore, 2)}</td>
              <td class="nowrap">
                <Time iso={incident.resolvedAt} fallback="still open" />
              </td>
              <td>{incident.flapping ? 'yes' : 'no'}</td>
            </tr>
          ))}
        </DataTable>
      </Loadable>
      <h3>Anomaly episodes</h3>
      <Loadable empty={result.episodes.length === 0} emptyText="None.">
        <DataTable columns={['Started', 'Metric', 'Severity', { label: 'Start value', num: true }, { label: 'Peak z', num: true }, 'Ended']}>
          {result.episodes.map((episode, index) => (
            <tr key={index}>
              <td class="nowrap">
                <Time iso={episode.startedAt} />
              </td>
              <td>{episode.metric}</td>
              <td>
                <SeverityBadge severity={episode.severity} />
              </td>
              <td class="num">{formatNumber(episode.startValue)}</td>
              <td class="num">{formatNumber(episode.peakZScore, 2)}</td>
              <td class="nowrap">
                <Time iso={episode.lastAt} fallback="still going" />
              </td>
            </tr>
          ))}
        </DataTable>
      </Loadable>
    </div>
  )
}
