import { describe, expect, it } from 'vitest'
import type { IncidentStatus, Severity } from '../../../src/db/schema/index.js'
import { DomainError, InvalidTransitionError } from '../../../src/lib/domain-errors.js'
import {
  decideOnAnomalies,
  maxSeverity,
  MAX_INCIDENT_SERIES,
  metricsOf,
  openIncident,
  transition,
  type AnomalySignal,
  type IncidentChange,
  type IncidentEffects,
  type IncidentEvent,
  type IncidentState
} from '../../../src/modules/incidents/lifecycle.js'

/** A fixed clock: every test states its instants relative to T0. */
const T0 = new Date('2025-03-01T10:00:00.000Z')
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000)
const NOW = at(1000)

const signal = (metric: string, severity: Severity, zScore: number, labels: Record<string, string> = {}): AnomalySignal => ({
  metric,
  series: `${metric}${JSON.stringify(labels)}`,
  labels,
  severity,
  zScore
})
const ref = (metric: string, labels: Record<string, string> = {}) => ({ id: `${metric}${JSON.stringify(labels)}`, metric, labels })

function incident(overrides: Partial<IncidentState> = {}): IncidentState {
  return {
    status: 'open',
    severity: 'warning',
    flapping: false,
    title: 'cpu anomalous on api',
    metrics: ['cpu'],
    series: [ref('cpu')],
    anomalyCount: 3,
    peakZScore: 4.2,
    details: null,
    openedAt: T0,
    lastAnomalyAt: at(100),
    acknowledgedAt: null,
    acknowledgedBy: null,
    resolvedAt: null,
    resolvedBy: null,
    resolutionNote: null,
    ...overrides
  }
}

const OPEN = incident()
const ACKNOWLEDGED = incident({ status: 'acknowledged', acknowledgedAt: at(200), acknowledgedBy: 'user:alice' })
const RESOLVED = incident({ status: 'resolved', resolvedAt: at(500), resolvedBy: 'auto', resolutionNote: 'quiet' })
const BY_STATUS: Record<IncidentStatus, IncidentState> = { open: OPEN, acknowledged: ACKNOWLEDGED, resolved: RESOLVED }
const STATUSES: IncidentStatus[] = ['open', 'acknowledged', 'resolved']

const effects = (partial: Partial<IncidentEffects>): IncidentEffects => ({
  audit: null,
  event: null,
  proposeRunbooks: false,
  forgetOpenIncident: false,
  ...partial
})
const RESOLVED_EFFECTS = effects({ audit: 'incident.resolved', event: 'incident.resolved', forgetOpenIncident: true })

/** Deep-frozen, so a transition that mutated its input would throw in strict mode. */
function frozen(state: IncidentState): IncidentState {
  Object.freeze(state.metrics)
  if (state.details) Object.freeze(state.details)
  return Object.freeze({ ...state })
}

/** A change that the test expects to exist. */
function changed(state: IncidentState, event: IncidentEvent, now = NOW): IncidentChange {
  const change = transition(state, event, now)
  if (!change) throw new Error(`expected ${event.type} on a ${state.status} incident to change it`)
  return change
}

/** The thrown error, for asserting its class and message together. */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw')
}

const EVENTS: Record<IncidentEvent['type'], IncidentEvent> = {
  anomalies: { type: 'anomalies', anomalies: [signal('cpu', 'warning', 3)] },
  reopen: { type: 'reopen', anomalies: [signal('cpu', 'warning', 3)] },
  alert: { type: 'alert', severity: 'warning', title: 'again' },
  acknowledge: { type: 'acknowledge', by: 'user:bob' },
  resolve: { type: 'resolve', by: 'user:bob' },
  quiet: { type: 'quiet' },
  ongoing: { type: 'ongoing' },
  recovered: { type: 'recovered', actionId: 'act-1', since: at(150) },
  not_recovered: { type: 'not_recovered' }
}

/** What each event does from each status: a change, nothing (null), or a refusal. */
const MATRIX: Record<IncidentEvent['type'], Record<IncidentStatus, 'change' | 'null' | 'throws'>> = {
  anomalies: { open: 'change', acknowledged: 'change', resolved: 'null' },
  reopen: { open: 'null', acknowledged: 'null', resolved: 'change' },
  alert: { open: 'change', acknowledged: 'change', resolved: 'null' },
  acknowledge: { open: 'change', acknowledged: 'throws', resolved: 'throws' },
  resolve: { open: 'change', acknowledged: 'change', resolved: 'throws' },
  quiet: { open: 'change', acknowledged: 'change', resolved: 'null' },
  ongoing: { open: 'change', acknowledged: 'change', resolved: 'null' },
  recovered: { open: 'change', acknowledged: 'change', resolved: 'null' },
  not_recovered: { open: 'change', acknowledged: 'change', resolved: 'null' }
}

describe('incident lifecycle: every event from every status', () => {
  const cases = Object.entries(MATRIX).flatMap(([type, row]) =>
    STATUSES.map((status) => ({ type: type as IncidentEvent['type'], status, expected: row[status] }))
  )
  it.each(cases)('$type from $status → $expected', ({ type, status, expected }) => {
    const run = () => transition(frozen({ ...BY_STATUS[status] }), EVENTS[type], NOW)
    if (expected === 'throws') {
      expect(run).toThrow(InvalidTransitionError)
    } else if (expected === 'null') {
      expect(run()).toBeNull()
    } else {
      expect(run()).not.toBeNull()
    }
  })
})

describe('maxSeverity and metricsOf', () => {
  it.each([
    ['warning', 'warning', 'warning'],
    ['warning', 'critical', 'critical'],
    ['critical', 'warning', 'critical'],
    ['critical', 'critical', 'critical']
  ] as const)('maxSeverity(%s, %s) = %s', (a, b, expected) => {
    expect(maxSeverity(a, b)).toBe(expected)
  })

  it('metricsOf dedupes in first-seen order', () => {
    expect(metricsOf([signal('mem', 'warning', 3), signal('cpu', 'critical', 5), signal('mem', 'warning', 4)])).toEqual(['mem', 'cpu'])
    expect(metricsOf([])).toEqual([])
  })
})

describe('openIncident', () => {
  it('opens from detector anomalies: one count per anomaly, metrics deduped, the largest |z| as peak', () => {
    const anomalies = [signal('cpu', 'warning', 3.1), signal('cpu', 'critical', -5.4), signal('latency_p99', 'warning', 4)]
    const { state, effects: fx } = openIncident({ title: 'cpu, latency_p99 anomalous on api', severity: 'critical', anomalies }, NOW)
    expect(state).toEqual({
      status: 'open',
      severity: 'critical',
      flapping: false,
      title: 'cpu, latency_p99 anomalous on api',
      metrics: ['cpu', 'latency_p99'],
      series: [ref('cpu'), ref('latency_p99')],
      anomalyCount: 3,
      peakZScore: -5.4,
      details: null,
      openedAt: NOW,
      lastAnomalyAt: NOW,
      acknowledgedAt: null,
      acknowledgedBy: null,
      resolvedAt: null,
      resolvedBy: null,
      resolutionNote: null
    })
    expect(fx).toEqual(effects({ audit: 'incident.opened', event: 'incident.opened', proposeRunbooks: true }))
  })

  it('takes the severity it is given, not one computed from the anomalies', () => {
    const { state } = openIncident({ title: 't', severity: 'warning', anomalies: [signal('cpu', 'critical', 9)] }, NOW)
    expect(state.severity).toBe('warning')
  })

  it('opens from an alert: no metrics, one occurrence, no peak, details kept', () => {
    const details = { source: 'alertmanager', labels: { alertname: 'HighErrorRate' } }
    const { state, effects: fx } = openIncident({ title: 'HighErrorRate', severity: 'warning', metrics: [], details }, NOW)
    expect(state.metrics).toEqual([])
    expect(state.anomalyCount).toBe(1)
    expect(state.peakZScore).toBeNull()
    expect(state.details).toEqual(details)
    expect(state.status).toBe('open')
    expect(state.flapping).toBe(false)
    expect(state.openedAt).toBe(NOW)
    expect(state.lastAnomalyAt).toBe(NOW)
    expect(fx).toEqual(effects({ audit: 'incident.opened', event: 'incident.opened', proposeRunbooks: true }))
  })

  it('explicit metrics win over the anomalies’ metrics', () => {
    const { state } = openIncident({ title: 't', severity: 'warning', metrics: ['x'], anomalies: [signal('cpu', 'warning', 3)] }, NOW)
    expect(state.metrics).toEqual(['x'])
  })

  it('details default to null', () => {
    expect(openIncident({ title: 't', severity: 'warning', metrics: [] }, NOW).state.details).toBeNull()
  })
})

describe('anomalies attaching to a live incident', () => {
  it('the same metric at the same severity: count, peak and last anomaly move, but no audit and no event', () => {
    const change = changed(frozen(incident()), { type: 'anomalies', anomalies: [signal('cpu', 'warning', 5), signal('cpu', 'warning', -3)] })
    expect(change.set).toEqual({ metrics: ['cpu'], series: [ref('cpu')], severity: 'warning', anomalyCount: 5, peakZScore: 5, lastAnomalyAt: NOW })
    expect(change.effects).toEqual(effects({}))
  })

  it('names each series (metric + labels) once, the first 20 of them; a new series of a known metric is no audit row', () => {
    const cpus = Array.from({ length: 30 }, (_, i) => signal('cpu', 'warning', 4, { cpu: String(i) }))
    const change = changed(incident(), { type: 'anomalies', anomalies: [...cpus, ...cpus] })
    expect(change.set.series).toHaveLength(MAX_INCIDENT_SERIES)
    expect(change.set.series!.slice(0, 3)).toEqual([ref('cpu'), ref('cpu', { cpu: '0' }), ref('cpu', { cpu: '1' })])
    expect(change.effects).toEqual(effects({}))
  })

  it('a new metric is worth an audit row (incident.updated) and an event, not runbooks', () => {
    const change = changed(incident(), { type: 'anomalies', anomalies: [signal('mem', 'warning', 3), signal('mem', 'warning', 3.5)] })
    expect(change.set.metrics).toEqual(['cpu', 'mem'])
    expect(change.set.severity).toBe('warning')
    expect(change.set.anomalyCount).toBe(5)
    expect(change.effects).toEqual(effects({ audit: 'incident.updated', event: 'incident.updated' }))
  })

  it('an escalation to critical audits incident.escalated and proposes runbooks', () => {
    const change = changed(incident(), { type: 'anomalies', anomalies: [signal('cpu', 'critical', 7)] })
    expect(change.set.severity).toBe('critical')
    expect(change.set.metrics).toEqual(['cpu'])
    expect(change.effects).toEqual(effects({ audit: 'incident.escalated', event: 'incident.updated', proposeRunbooks: true }))
  })

  it('an escalation with a new metric is still audited as an escalation', () => {
    const change = changed(incident(), { type: 'anomalies', anomalies: [signal('mem', 'critical', 7)] })
    expect(change.set.metrics).toEqual(['cpu', 'mem'])
    expect(change.effects.audit).toBe('incident.escalated')
    expect(change.effects.proposeRunbooks).toBe(true)
  })

  it('warnings never lower a critical incident, and are no escalation', () => {
    const change = changed(incident({ severity: 'critical' }), { type: 'anomalies', anomalies: [signal('cpu', 'warning', 3)] })
    expect(change.set.severity).toBe('critical')
    expect(change.effects).toEqual(effects({}))
  })

  it('attaches to an acknowledged incident without changing its status or acknowledgement', () => {
    const change = changed(frozen({ ...ACKNOWLEDGED }), { type: 'anomalies', anomalies: [signal('cpu', 'critical', 8)] })
    expect(change.set).not.toHaveProperty('status')
    expect(change.set).not.toHaveProperty('acknowledgedAt')
    expect(change.set).not.toHaveProperty('acknowledgedBy')
    expect(change.effects.audit).toBe('incident.escalated')
  })

  it('a metric repeated within the batch is added once', () => {
    const change = changed(incident(), { type: 'anomalies', anomalies: [signal('mem', 'warning', 3), signal('cpu', 'warning', 3), signal('mem', 'warning', 3)] })
    expect(change.set.metrics).toEqual(['cpu', 'mem'])
  })

  it('returns null on a resolved incident', () => {
    expect(transition(RESOLVED, { type: 'anomalies', anomalies: [signal('cpu', 'critical', 9)] }, NOW)).toBeNull()
  })
})

describe('peakZScore', () => {
  const peakAfter = (start: number | null, zs: number[]) =>
    changed(incident({ peakZScore: start }), { type: 'anomalies', anomalies: zs.map((z) => signal('cpu', 'warning', z)) }).set.peakZScore

  it('keeps the existing peak when nothing is larger in magnitude', () => {
    expect(peakAfter(4.2, [3, -2, 4.1])).toBe(4.2)
  })

  it('takes a larger negative z with its sign', () => {
    expect(peakAfter(4.2, [-6.5, 5])).toBe(-6.5)
  })

  it('takes a larger positive z over a negative peak', () => {
    expect(peakAfter(-4.2, [3, 4.3])).toBe(4.3)
  })

  it('keeps the earlier of two equal magnitudes', () => {
    expect(peakAfter(4, [-4])).toBe(4)
    expect(peakAfter(-4, [4])).toBe(-4)
  })

  it('starts from the first anomaly when there is no peak yet', () => {
    expect(peakAfter(null, [2, -3.5, 3])).toBe(-3.5)
  })
})

describe('reopen', () => {
  it('re-opens a resolved incident as flapping, clears acknowledgement and resolution, takes the batch severity', () => {
    const before = frozen(
      incident({
        status: 'resolved',
        severity: 'critical',
        acknowledgedAt: at(200),
        acknowledgedBy: 'user:alice',
        resolvedAt: at(500),
        resolvedBy: 'user:alice',
        resolutionNote: 'restarted'
      })
    )
    const change = changed(before, { type: 'reopen', anomalies: [signal('mem', 'warning', -3.3), signal('cpu', 'warning', 2)] })
    expect(change.set).toEqual({
      status: 'open',
      flapping: true,
      severity: 'warning',
      metrics: ['cpu', 'mem'],
      series: [ref('cpu'), ref('mem')],
      anomalyCount: 5,
      peakZScore: 4.2,
      lastAnomalyAt: NOW,
      acknowledgedAt: null,
      acknowledgedBy: null,
      resolvedAt: null,
      resolvedBy: null,
      resolutionNote: null
    })
    expect(change.effects).toEqual(effects({ audit: 'incident.reopened', event: 'incident.opened', proposeRunbooks: true }))
  })

  it('a critical batch re-opens a warning incident as critical, with a new peak', () => {
    const change = changed(RESOLVED, { type: 'reopen', anomalies: [signal('cpu', 'critical', -9)] })
    expect(change.set.severity).toBe('critical')
    expect(change.set.peakZScore).toBe(-9)
  })

  it('keeps the title and openedAt of the incident', () => {
    const change = changed(RESOLVED, { type: 'reopen', anomalies: [signal('cpu', 'warning', 3)] })
    expect(change.set).not.toHaveProperty('title')
    expect(change.set).not.toHaveProperty('openedAt')
  })

  it.each(['open', 'acknowledged'] as const)('returns null on a %s incident', (status) => {
    expect(transition(BY_STATUS[status], { type: 'reopen', anomalies: [signal('cpu', 'critical', 9)] }, NOW)).toBeNull()
  })
})

describe('alert', () => {
  it('updates title and details, counts one occurrence, audits incident.updated', () => {
    const before = frozen(incident({ details: { a: 1, b: 1 } }))
    const change = changed(before, { type: 'alert', severity: 'warning', title: 'HighErrorRate (again)', details: { b: 2, c: 3 } })
    expect(change.set).toEqual({
      severity: 'warning',
      title: 'HighErrorRate (again)',
      details: { a: 1, b: 2, c: 3 },
      anomalyCount: 4,
      lastAnomalyAt: NOW
    })
    expect(change.effects).toEqual(effects({ audit: 'incident.updated', event: 'incident.updated' }))
  })

  it('a critical alert escalates a warning incident and proposes runbooks', () => {
    const change = changed(ACKNOWLEDGED, { type: 'alert', severity: 'critical', title: 't' })
    expect(change.set.severity).toBe('critical')
    expect(change.set).not.toHaveProperty('status')
    expect(change.effects).toEqual(effects({ audit: 'incident.escalated', event: 'incident.updated', proposeRunbooks: true }))
  })

  it('a warning alert does not lower a critical incident', () => {
    const change = changed(incident({ severity: 'critical' }), { type: 'alert', severity: 'warning', title: 't' })
    expect(change.set.severity).toBe('critical')
    expect(change.effects.audit).toBe('incident.updated')
    expect(change.effects.proposeRunbooks).toBe(false)
  })

  it('returns null on a resolved incident', () => {
    expect(transition(RESOLVED, { type: 'alert', severity: 'critical', title: 't' }, NOW)).toBeNull()
  })
})

describe('acknowledge', () => {
  it('acknowledges an open incident', () => {
    const change = changed(frozen(incident()), { type: 'acknowledge', by: 'user:bob' })
    expect(change.set).toEqual({ status: 'acknowledged', acknowledgedAt: NOW, acknowledgedBy: 'user:bob' })
    expect(change.effects).toEqual(effects({ audit: 'incident.acknowledged', event: 'incident.updated' }))
  })

  it.each(['acknowledged', 'resolved'] as const)('refuses a %s incident with InvalidTransitionError', (status) => {
    const err = thrown(() => transition(BY_STATUS[status], { type: 'acknowledge', by: 'user:bob' }, NOW))
    expect(err).toBeInstanceOf(InvalidTransitionError)
    expect(err).toBeInstanceOf(DomainError)
    expect((err as Error).name).toBe('InvalidTransitionError')
    expect((err as Error).message).toBe(`incident is ${status}; acknowledged needs it to be open`)
  })
})

describe('resolve', () => {
  it.each(['open', 'acknowledged'] as const)('resolves a %s incident with the note', (status) => {
    const change = changed(frozen({ ...BY_STATUS[status] }), { type: 'resolve', by: 'user:bob', note: 'rolled back' })
    expect(change.set).toEqual({ status: 'resolved', resolvedAt: NOW, resolvedBy: 'user:bob', resolutionNote: 'rolled back', flapping: false })
    expect(change.effects).toEqual(RESOLVED_EFFECTS)
  })

  it('a missing or null note is stored as null', () => {
    expect(changed(OPEN, { type: 'resolve', by: 'user:bob' }).set.resolutionNote).toBeNull()
    expect(changed(OPEN, { type: 'resolve', by: 'user:bob', note: null }).set.resolutionNote).toBeNull()
  })

  it('clears flapping', () => {
    expect(changed(incident({ flapping: true }), { type: 'resolve', by: 'user:bob' }).set.flapping).toBe(false)
  })

  it('keeps the acknowledgement of an acknowledged incident', () => {
    const change = changed(ACKNOWLEDGED, { type: 'resolve', by: 'user:bob' })
    expect(change.set).not.toHaveProperty('acknowledgedAt')
    expect(change.set).not.toHaveProperty('acknowledgedBy')
  })

  it('refuses a resolved incident with InvalidTransitionError', () => {
    const err = thrown(() => transition(RESOLVED, { type: 'resolve', by: 'user:bob' }, NOW))
    expect(err).toBeInstanceOf(InvalidTransitionError)
    expect((err as Error).message).toBe('incident is resolved; resolved needs it to be open or acknowledged')
  })
})

describe('quiet', () => {
  it.each(['open', 'acknowledged'] as const)('auto-resolves a %s incident without a note', (status) => {
    const change = changed(BY_STATUS[status], { type: 'quiet' })
    expect(change.set).toEqual({ status: 'resolved', resolvedAt: NOW, resolvedBy: 'auto', resolutionNote: null, flapping: false })
    expect(change.effects).toEqual(RESOLVED_EFFECTS)
  })

  it('returns null on a resolved incident', () => {
    expect(transition(RESOLVED, { type: 'quiet' }, NOW)).toBeNull()
  })
})

describe('recovered', () => {
  const since = at(150)
  const recovered: IncidentEvent = { type: 'recovered', actionId: 'act-42', since }

  it.each([
    ['before', at(149)],
    ['exactly at', since],
    ['missing (null) for', null]
  ] as const)('resolves when the last anomaly is %s the action finishing', (_label, lastAnomalyAt) => {
    const change = changed(incident({ lastAnomalyAt }), recovered)
    expect(change.set).toEqual({
      status: 'resolved',
      resolvedAt: NOW,
      resolvedBy: 'auto',
      resolutionNote: 'recovered after action act-42',
      flapping: false
    })
    expect(change.effects).toEqual(RESOLVED_EFFECTS)
  })

  it('resolves an acknowledged incident', () => {
    expect(changed(ACKNOWLEDGED, recovered).set.status).toBe('resolved')
  })

  it('returns null when an anomaly attached after the action finished (even 1 ms after)', () => {
    expect(transition(incident({ lastAnomalyAt: new Date(since.getTime() + 1) }), recovered, NOW)).toBeNull()
    expect(transition(incident({ lastAnomalyAt: at(900) }), recovered, NOW)).toBeNull()
  })

  it('returns null on a resolved incident', () => {
    expect(transition(incident({ status: 'resolved', lastAnomalyAt: at(1) }), recovered, NOW)).toBeNull()
  })
})

describe('not_recovered', () => {
  it.each(['open', 'acknowledged'] as const)('escalates a %s warning incident to critical', (status) => {
    const change = changed(BY_STATUS[status], { type: 'not_recovered' })
    expect(change.set).toEqual({ severity: 'critical' })
    expect(change.effects).toEqual(effects({ audit: 'incident.escalated', event: 'incident.updated' }))
  })

  it('returns null on a critical incident', () => {
    expect(transition(incident({ severity: 'critical' }), { type: 'not_recovered' }, NOW)).toBeNull()
  })

  it('returns null on a resolved incident', () => {
    expect(transition(RESOLVED, { type: 'not_recovered' }, NOW)).toBeNull()
  })
})

describe('decideOnAnomalies', () => {
  const QUIET = 300 // 3 × quiet period = 900 s
  const resolvedAgo = (ms: number) => incident({ status: 'resolved', resolvedAt: new Date(NOW.getTime() - ms) })
  const decide = (over: Partial<Parameters<typeof decideOnAnomalies>[0]>) =>
    decideOnAnomalies({ open: null, lastResolved: null, triggered: true, quietPeriodSeconds: QUIET, now: NOW, ...over })

  it.each([true, false])('attaches to an open incident (triggered: %s), whatever was resolved before', (triggered) => {
    expect(decide({ open: OPEN, triggered })).toBe('attach')
    expect(decide({ open: ACKNOWLEDGED, triggered, lastResolved: resolvedAgo(1000) })).toBe('attach')
  })

  it('does nothing when not triggered and nothing is open, even right after a resolve', () => {
    expect(decide({ triggered: false })).toBe('none')
    expect(decide({ triggered: false, lastResolved: resolvedAgo(1000) })).toBe('none')
  })

  it('opens when nothing was resolved before', () => {
    expect(decide({})).toBe('open')
    expect(decide({ lastResolved: incident({ status: 'resolved', resolvedAt: null }) })).toBe('open')
  })

  it('re-opens within three quiet periods of the last resolve', () => {
    expect(decide({ lastResolved: resolvedAgo(0) })).toBe('reopen')
    expect(decide({ lastResolved: resolvedAgo(60_000) })).toBe('reopen')
    expect(decide({ lastResolved: resolvedAgo(3 * QUIET * 1000 - 1) })).toBe('reopen')
  })

  it('opens a new one at or beyond three quiet periods', () => {
    expect(decide({ lastResolved: resolvedAgo(3 * QUIET * 1000) })).toBe('open')
    expect(decide({ lastResolved: resolvedAgo(3 * QUIET * 1000 + 1) })).toBe('open')
    expect(decide({ lastResolved: resolvedAgo(86_400_000) })).toBe('open')
  })

  it('scales the window with the quiet period', () => {
    const lastResolved = resolvedAgo(1000 * 1000)
    expect(decide({ lastResolved, quietPeriodSeconds: 300 })).toBe('open')
    expect(decide({ lastResolved, quietPeriodSeconds: 400 })).toBe('reopen')
  })
})

describe('a simulated clock, as a backtest runs the machine', () => {
  it('open → anomalies → quiet → reopen (flapping) → acknowledge → resolve, purely in memory', () => {
    const quietPeriodSeconds = 300
    const audits: (string | null)[] = []
    const events: (string | null)[] = []
    let current: IncidentState | null = null
    let lastResolved: IncidentState | null = null

    const record = (fx: IncidentEffects) => {
      audits.push(fx.audit)
      events.push(fx.event)
    }
    const apply = (state: IncidentState, change: IncidentChange | null): IncidentState => {
      expect(change).not.toBeNull()
      record(change!.effects)
      return { ...state, ...change!.set }
    }
    /** What the detector does with a batch: decide, then open, attach or re-open. */
    const batch = (now: Date, anomalies: AnomalySignal[]) => {
      const triggered = anomalies.some((a) => a.severity === 'critical')
      const open = current && current.status !== 'resolved' ? current : null
      const decision = decideOnAnomalies({ open, lastResolved, triggered, quietPeriodSeconds, now })
      if (decision === 'open') {
        const opened = openIncident({ title: `${metricsOf(anomalies).join(', ')} anomalous`, severity: 'critical', anomalies }, now)
        record(opened.effects)
        current = opened.state
      } else if (decision === 'attach') {
        current = apply(current!, transition(current!, { type: 'anomalies', anomalies }, now))
      } else if (decision === 'reopen') {
        current = apply(lastResolved!, transition(lastResolved!, { type: 'reopen', anomalies }, now))
        lastResolved = null
      }
      return decision
    }
    const step = (now: Date, event: IncidentEvent) => {
      current = apply(current!, transition(current!, event, now))
      if (current.status === 'resolved') lastResolved = current
    }

    expect(batch(at(0), [signal('cpu', 'critical', 6.1)])).toBe('open')
    expect(batch(at(30), [signal('cpu', 'warning', 3.2), signal('mem', 'warning', -4)])).toBe('attach')
    expect(batch(at(60), [signal('cpu', 'warning', 2.9)])).toBe('attach')
    expect(current).toMatchObject({ status: 'open', metrics: ['cpu', 'mem'], anomalyCount: 4, peakZScore: 6.1, lastAnomalyAt: at(60) })

    step(at(360), { type: 'quiet' })
    expect(current).toMatchObject({ status: 'resolved', resolvedBy: 'auto', resolvedAt: at(360), flapping: false })

    // A warning alone does not re-open it; a critical one 240 s after the resolve (< 900 s) does.
    expect(batch(at(500), [signal('cpu', 'warning', 3)])).toBe('none')
    expect(batch(at(600), [signal('mem', 'critical', -7.5)])).toBe('reopen')
    expect(current).toMatchObject({
      status: 'open',
      flapping: true,
      severity: 'critical',
      anomalyCount: 5,
      peakZScore: -7.5,
      openedAt: at(0),
      lastAnomalyAt: at(600),
      resolvedAt: null,
      resolvedBy: null
    })

    step(at(700), { type: 'acknowledge', by: 'user:alice' })
    expect(current).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'user:alice', acknowledgedAt: at(700), flapping: true })
    step(at(800), { type: 'resolve', by: 'user:alice', note: 'scaled up' })
    expect(current).toMatchObject({ status: 'resolved', resolvedBy: 'user:alice', resolutionNote: 'scaled up', flapping: false })

    // Well past three quiet periods, a new incident opens rather than this one re-opening.
    expect(batch(at(800 + 900), [signal('cpu', 'critical', 5)])).toBe('open')
    expect(current).toMatchObject({ status: 'open', flapping: false, anomalyCount: 1, openedAt: at(1700) })

    expect(audits).toEqual([
      'incident.opened',
      'incident.updated',
      null,
      'incident.resolved',
      'incident.reopened',
      'incident.acknowledged',
      'incident.resolved',
      'incident.opened'
    ])
    expect(events).toEqual([
      'incident.opened',
      'incident.updated',
      null,
      'incident.resolved',
      'incident.opened',
      'incident.updated',
      'incident.resolved',
      'incident.opened'
    ])
  })
})
