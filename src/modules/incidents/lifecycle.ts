import { isDeepStrictEqual } from 'node:util'
import type { incidents, IncidentSeries, IncidentStatus, Severity } from '../../db/schema/index.js'
import { InvalidTransitionError } from '../../lib/domain-errors.js'
import type { Anomaly } from '../detection/schemas.js'

/**
 * The incident lifecycle as a pure state machine: (state, event, now) → the fields that change and the
 * effects to carry out. No I/O: the repository persists a change with its audit row, the services carry
 * out the effects, and a backtest can run the same machine in memory on a simulated clock.
 *
 *   open ──acknowledge──▶ acknowledged
 *     │ ╲                    │
 *     │  resolve / quiet / recovered / alert resolve
 *     ▼                      ▼
 *   resolved ──anomalies within 3 × quiet period──▶ open (flapping)
 */
export type IncidentState = Pick<
  typeof incidents.$inferSelect,
  | 'status'
  | 'severity'
  | 'flapping'
  | 'title'
  | 'metrics'
  | 'series'
  | 'anomalyCount'
  | 'peakZScore'
  | 'details'
  | 'openedAt'
  | 'lastAnomalyAt'
  | 'acknowledgedAt'
  | 'acknowledgedBy'
  | 'resolvedAt'
  | 'resolvedBy'
  | 'resolutionNote'
>

/** What the lifecycle needs of an anomaly. */
export type AnomalySignal = Pick<Anomaly, 'metric' | 'series' | 'labels' | 'severity' | 'zScore'>

export type IncidentEvent =
  /** new anomalies of the service fold into its open incident */
  | { type: 'anomalies'; anomalies: AnomalySignal[] }
  /** an anomaly episode already counted goes on: the incident is not quiet */
  | { type: 'ongoing' }
  /** new anomalies re-open an incident resolved moments ago: it is flapping */
  | { type: 'reopen'; anomalies: AnomalySignal[] }
  /** an external alert with the incident's dedup key fires again (null when it says nothing new) */
  | { type: 'alert'; severity: Severity; title: string; details?: Record<string, unknown> }
  | { type: 'acknowledge'; by: string }
  /** a person, an alert's resolve, or a recovery resolves it */
  | { type: 'resolve'; by: string; note?: string | null }
  /** the worker: no anomaly for the service's quiet period */
  | { type: 'quiet' }
  /** verification: the metric recovered after an action that finished at `since` */
  | { type: 'recovered'; actionId: string; since: Date }
  /** verification: the metric did not recover */
  | { type: 'not_recovered' }

export type IncidentAudit = 'incident.opened' | 'incident.updated' | 'incident.escalated' | 'incident.reopened' | 'incident.acknowledged' | 'incident.resolved'

export interface IncidentEffects {
  /** the audit row's action; null when the change is not worth one (a count or peak moved) */
  audit: IncidentAudit | null
  /** the event for the organization's stream, if any */
  event: 'incident.opened' | 'incident.updated' | 'incident.resolved' | null
  /** the service's runbooks propose their actions (opened, re-opened or escalated by what it saw) */
  proposeRunbooks: boolean
  /** the open-incident cache of the service no longer holds: the next anomaly looks again */
  forgetOpenIncident: boolean
}

export interface IncidentChange {
  set: Partial<IncidentState>
  effects: IncidentEffects
}

export const maxSeverity = (a: Severity, b: Severity): Severity => (a === 'critical' || b === 'critical' ? 'critical' : 'warning')
export const severityOf = (anomalies: AnomalySignal[]) => anomalies.map((a) => a.severity).reduce(maxSeverity)
const peakOf = (anomalies: AnomalySignal[], start: number | null) =>
  anomalies.reduce((peak, a) => (peak === null || Math.abs(a.zScore) > Math.abs(peak) ? a.zScore : peak), start)
const union = (a: string[], b: string[]) => [...new Set([...a, ...b])]
export const metricsOf = (anomalies: AnomalySignal[]) => [...new Set(anomalies.map((a) => a.metric))]
/** An incident names at most this many series (its metrics name them all). */
export const MAX_INCIDENT_SERIES = 20
/** The series an incident names: those it had, then the anomalies' new ones, up to MAX_INCIDENT_SERIES. */
export function seriesOf(state: Pick<IncidentState, 'series'> | null, anomalies: AnomalySignal[]): IncidentSeries[] {
  const out = [...(state?.series ?? [])]
  const known = new Set(out.map((s) => s.id))
  for (const a of anomalies) {
    if (out.length >= MAX_INCIDENT_SERIES) break
    if (known.has(a.series)) continue
    known.add(a.series)
    out.push({ id: a.series, metric: a.metric, labels: a.labels })
  }
  return out
}

/** An alert incident's details at most: a trigger's own details past these are refused, a merge stays within them. */
export const MAX_DETAILS_BYTES = 16 * 1024
export const MAX_DETAILS_KEYS = 100

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? '')

/** Why a trigger's details are past the bound, or undefined when they are within it. */
export function detailsOverBound(details: Record<string, unknown> | undefined): string | undefined {
  if (!details) return undefined
  const keys = Object.keys(details).length
  if (keys > MAX_DETAILS_KEYS) return `details have ${keys} keys; at most ${MAX_DETAILS_KEYS} are taken`
  const bytes = jsonBytes(details)
  if (bytes > MAX_DETAILS_BYTES) return `details are ${bytes} bytes of JSON; at most ${MAX_DETAILS_BYTES} are taken`
  return undefined
}

/**
 * A trigger's details merged into the stored ones: the trigger's keys win, and keys only the stored details
 * have are kept, in stored order, while the result stays within MAX_DETAILS_BYTES and MAX_DETAILS_KEYS (the
 * rest are dropped). The trigger's own details are within the bound (refused before otherwise), so merges
 * never grow details past it.
 */
export function mergeDetails(stored: Record<string, unknown> | null, incoming: Record<string, unknown> | undefined) {
  if (!incoming) return stored
  const entries = Object.entries(incoming)
  let bytes = jsonBytes(incoming)
  for (const [key, value] of Object.entries(stored ?? {})) {
    if (Object.hasOwn(incoming, key)) continue
    // `"key":value` and a comma: counted whole, so the sum never underestimates the JSON.
    const added = jsonBytes(key) + jsonBytes(value) + 2
    if (entries.length >= MAX_DETAILS_KEYS || bytes + added > MAX_DETAILS_BYTES) continue
    entries.push([key, value])
    bytes += added
  }
  return Object.fromEntries(entries)
}

const effects = (partial: Partial<IncidentEffects>): IncidentEffects => ({
  audit: null,
  event: null,
  proposeRunbooks: false,
  forgetOpenIncident: false,
  ...partial
})

/** Which statuses each deliberate step starts from; anything else is refused. */
const ALLOWED_FROM: Partial<Record<IncidentEvent['type'], IncidentStatus[]>> = {
  acknowledge: ['open'],
  resolve: ['open', 'acknowledged']
}
const PAST_TENSE: Partial<Record<IncidentEvent['type'], string>> = { acknowledge: 'acknowledged', resolve: 'resolved' }

/** A live incident carries no acknowledgement or resolution (opened, or re-opened after a flap). */
const UNSETTLED = { acknowledgedAt: null, acknowledgedBy: null, resolvedAt: null, resolvedBy: null, resolutionNote: null } as const

/** A resolved incident takes no further anomalies, alerts or verdicts: only re-opening. */
const live = (state: IncidentState) => state.status !== 'resolved'

/** What happens when the service's anomalies arrive: attach to the open one, re-open a flapping one, open one, or nothing. */
export type AnomalyDecision = 'attach' | 'reopen' | 'open' | 'none'

/**
 * An incident opens on a critical anomaly or enough warnings (`triggered`); one resolved less than three
 * quiet periods ago re-opens as flapping instead of a new one opening.
 */
export function decideOnAnomalies(input: {
  open: IncidentState | null
  lastResolved: IncidentState | null
  triggered: boolean
  quietPeriodSeconds: number
  now: Date
}): AnomalyDecision {
  if (input.open) return 'attach'
  if (!input.triggered) return 'none'
  const resolvedAt = input.lastResolved?.resolvedAt
  if (resolvedAt && input.now.getTime() - resolvedAt.getTime() < 3 * input.quietPeriodSeconds * 1000) return 'reopen'
  return 'open'
}

/** A new incident: from the detector's anomalies or from an external alert. */
export function openIncident(
  input: { title: string; severity: Severity; metrics?: string[]; anomalies?: AnomalySignal[]; details?: Record<string, unknown> | null },
  now: Date
): { state: IncidentState; effects: IncidentEffects } {
  const anomalies = input.anomalies ?? []
  return {
    state: {
      status: 'open',
      severity: input.severity,
      flapping: false,
      title: input.title,
      metrics: input.metrics ?? metricsOf(anomalies),
      series: seriesOf(null, anomalies),
      anomalyCount: Math.max(anomalies.length, 1),
      peakZScore: peakOf(anomalies, null),
      details: input.details ?? null,
      openedAt: now,
      lastAnomalyAt: now,
      ...UNSETTLED
    },
    effects: effects({ audit: 'incident.opened', event: 'incident.opened', proposeRunbooks: true })
  }
}

/**
 * Applies one event. Returns the fields that change and the effects, or null when the event changes
 * nothing (the incident moved on meanwhile, or an alert repeats what it already says); throws InvalidTransitionError for a step its status refuses.
 */
export function transition(state: IncidentState, event: IncidentEvent, now: Date): IncidentChange | null {
  const from = ALLOWED_FROM[event.type]
  if (from && !from.includes(state.status)) {
    throw new InvalidTransitionError(`incident is ${state.status}; ${PAST_TENSE[event.type]} needs it to be ${from.join(' or ')}`)
  }
  switch (event.type) {
    case 'anomalies': {
      if (!live(state)) return null
      const metrics = union(state.metrics, metricsOf(event.anomalies))
      const severity = maxSeverity(state.severity, severityOf(event.anomalies))
      const escalated = severity !== state.severity
      // Count and peak change with every anomaly; only a new metric or an escalation is worth an audit row.
      const material = escalated || metrics.length !== state.metrics.length
      return {
        set: {
          metrics,
          series: seriesOf(state, event.anomalies),
          severity,
          anomalyCount: state.anomalyCount + event.anomalies.length,
          peakZScore: peakOf(event.anomalies, state.peakZScore),
          lastAnomalyAt: now
        },
        effects: effects({
          audit: escalated ? 'incident.escalated' : material ? 'incident.updated' : null,
          event: material ? 'incident.updated' : null,
          proposeRunbooks: escalated
        })
      }
    }
    case 'ongoing':
      return live(state) ? { set: { lastAnomalyAt: now }, effects: effects({}) } : null
    case 'reopen': {
      if (live(state)) return null
      return {
        set: {
          status: 'open',
          flapping: true,
          severity: severityOf(event.anomalies),
          metrics: union(state.metrics, metricsOf(event.anomalies)),
          series: seriesOf(state, event.anomalies),
          anomalyCount: state.anomalyCount + event.anomalies.length,
          peakZScore: peakOf(event.anomalies, state.peakZScore),
          lastAnomalyAt: now,
          ...UNSETTLED
        },
        effects: effects({ audit: 'incident.reopened', event: 'incident.opened', proposeRunbooks: true })
      }
    }
    case 'alert': {
      if (!live(state)) return null
      const severity = maxSeverity(state.severity, event.severity)
      const escalated = severity !== state.severity
      const details = mergeDetails(state.details, event.details)
      // A repeat of what the incident already says (Alertmanager re-sends firing alerts) writes nothing.
      if (!escalated && event.title === state.title && isDeepStrictEqual(details, state.details)) return null
      return {
        set: {
          severity,
          title: event.title,
          details,
          anomalyCount: state.anomalyCount + 1,
          lastAnomalyAt: now
        },
        effects: effects({ audit: escalated ? 'incident.escalated' : 'incident.updated', event: 'incident.updated', proposeRunbooks: escalated })
      }
    }
    case 'acknowledge':
      return {
        set: { status: 'acknowledged', acknowledgedAt: now, acknowledgedBy: event.by },
        effects: effects({ audit: 'incident.acknowledged', event: 'incident.updated' })
      }
    case 'resolve':
      return resolved(now, event.by, event.note ?? null)
    case 'quiet':
      return live(state) ? resolved(now, 'auto', null) : null
    case 'recovered':
      // Only if no anomaly attached since the action finished, including one that arrived after the
      // window was read.
      if (!live(state) || (state.lastAnomalyAt !== null && state.lastAnomalyAt > event.since)) return null
      return resolved(now, 'auto', `recovered after action ${event.actionId}`)
    case 'not_recovered':
      if (!live(state) || state.severity === 'critical') return null
      return { set: { severity: 'critical' }, effects: effects({ audit: 'incident.escalated', event: 'incident.updated' }) }
  }
}

function resolved(now: Date, by: string, note: string | null): IncidentChange {
  return {
    set: { status: 'resolved', resolvedAt: now, resolvedBy: by, resolutionNote: note, flapping: false },
    effects: effects({ audit: 'incident.resolved', event: 'incident.resolved', forgetOpenIncident: true })
  }
}
