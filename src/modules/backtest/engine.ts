import { randomUUID } from 'node:crypto'
import type { RedisClient } from '../../redis/client.js'
import type { DetectionConfig, Severity } from '../../db/schema/index.js'
import { scoreServiceBatch, seriesToScore, type DetectedSampleAnomaly, type ModelKeys, type ScoredSeries } from '../detection/detector.js'
import { kindOf, seriesIdOf } from '../detection/series.js'
import { decideOnAnomalies, metricsOf, openIncident, transition, type IncidentChange, type IncidentState } from '../incidents/lifecycle.js'

export interface BacktestRow {
  metric: string
  value: number
  /** epoch ms */
  time: number
}

/** Rows per script call: small, so no call holds Redis for long and continuing episodes are placed finely. */
const CHUNK = 250
/** Scratch models outlive a backtest this long at most (they are deleted when it ends). */
const SCRATCH_TTL_MS = 10 * 60_000

export interface BacktestEpisode {
  metric: string
  startedAt: number
  startValue: number
  severity: Severity
  peakZScore: number
  escalatedAt: number | null
  /** the last anomalous sample, once the episode ended; null while it was still going at the end */
  lastAt: number | null
}

export interface BacktestIncident {
  openedAt: number
  severity: Severity
  metrics: string[]
  anomalyCount: number
  peakZScore: number | null
  escalatedAt: number[]
  reopenedAt: number[]
  resolvedAt: number | null
  flapping: boolean
}

export interface BacktestResult {
  rows: number
  metrics: number
  learning: number
  stale: number
  /** every episode start and escalation, as ingestion would have listed them */
  marks: { metric: string; kind: 'start' | 'escalation'; time: number; zScore: number; severity: Severity }[]
  episodes: BacktestEpisode[]
  incidents: BacktestIncident[]
}

type IncidentSettings = Pick<DetectionConfig, 'quietPeriodSeconds' | 'openAfterWarnings' | 'warningWindowSeconds'>

/**
 * The incident lifecycle on a simulated clock: the same state machine the live service runs, fed with the
 * backtest's episode marks in time order; the quiet-period sweep is simulated between marks.
 */
function simulateIncidents(settings: IncidentSettings) {
  const quietMs = settings.quietPeriodSeconds * 1000
  const incidents: BacktestIncident[] = []
  let open: { state: IncidentState; record: BacktestIncident } | null = null
  let lastResolved: { state: IncidentState; record: BacktestIncident } | null = null
  const recent: number[] = []

  const apply = (target: { state: IncidentState; record: BacktestIncident }, change: IncidentChange | null, at: number) => {
    if (!change) return
    const before = target.state
    target.state = { ...before, ...change.set }
    if (change.effects.audit === 'incident.escalated') target.record.escalatedAt.push(at)
    target.record.severity = target.state.severity
    target.record.metrics = target.state.metrics
    target.record.anomalyCount = target.state.anomalyCount
    target.record.peakZScore = target.state.peakZScore
    target.record.flapping = target.state.flapping
    target.record.resolvedAt = target.state.resolvedAt?.getTime() ?? null
  }

  /** Episodes of the service still going: live ingestion keeps the open incident from going quiet meanwhile. */
  let activeEpisodes = 0

  /** The sweep would have resolved the open incident once its service was quiet long enough. */
  function sweepUntil(t: number) {
    const last = open?.state.lastAnomalyAt?.getTime()
    if (open && activeEpisodes === 0 && last !== undefined && last + quietMs <= t) {
      const at = last + quietMs
      apply(open, transition(open.state, { type: 'quiet' }, new Date(at)), at)
      lastResolved = open
      open = null
    }
  }

  /** A mark of a confirmed episode (what pages), in time order. */
  function mark(m: { metric: string; time: number; zScore: number; severity: Severity }) {
    sweepUntil(m.time)
    const now = new Date(m.time)
    recent.push(m.time)
    while (recent.length > 0 && recent[0]! <= m.time - settings.warningWindowSeconds * 1000) recent.shift()
    const anomalies = [{ metric: m.metric, series: seriesIdOf(m.metric, {}), labels: {}, severity: m.severity, zScore: m.zScore }]
    const triggered = m.severity === 'critical' || recent.length >= settings.openAfterWarnings
    const decision = decideOnAnomalies({
      open: open?.state ?? null,
      lastResolved: lastResolved?.state ?? null,
      triggered,
      quietPeriodSeconds: settings.quietPeriodSeconds,
      now
    })
    if (decision === 'attach') apply(open!, transition(open!.state, { type: 'anomalies', anomalies }, now), m.time)
    else if (decision === 'reopen') {
      const target = lastResolved!
      apply(target, transition(target.state, { type: 'reopen', anomalies }, now), m.time)
      target.record.reopenedAt.push(m.time)
      open = target
      lastResolved = null
    } else if (decision === 'open') {
      const opened = openIncident({ title: `${metricsOf(anomalies).join(', ')} anomalous`, severity: m.severity, anomalies }, now)
      const record: BacktestIncident = {
        openedAt: m.time,
        severity: opened.state.severity,
        metrics: opened.state.metrics,
        anomalyCount: opened.state.anomalyCount,
        peakZScore: opened.state.peakZScore,
        escalatedAt: [],
        reopenedAt: [],
        resolvedAt: null,
        flapping: false
      }
      incidents.push(record)
      open = { state: opened.state, record }
    }
  }

  const episodeStarted = () => void activeEpisodes++
  /** An episode ended: its last anomalous sample is when the incident last saw an anomaly. */
  function episodeEnded(lastAt: number) {
    activeEpisodes = Math.max(0, activeEpisodes - 1)
    if (open) apply(open, transition(open.state, { type: 'ongoing' }, new Date(lastAt)), lastAt)
  }

  return { mark, episodeStarted, episodeEnded, finish: sweepUntil, incidents }
}

/**
 * Replays history through the live scoring script on scratch keys (deleted afterwards, with a short TTL in
 * case the process dies) and the live incident lifecycle on a simulated clock. Touches no live baseline,
 * window, incident, event or action.
 */
export async function runBacktest(
  redis: RedisClient,
  detection: DetectionConfig,
  rows: BacktestRow[],
  options: { deadline?: number } = {}
): Promise<BacktestResult> {
  const run = randomUUID()
  const space: ModelKeys = {
    model: (seriesId) => `backtest:{${run}}:model:${seriesId}`,
    series: `backtest:{${run}}:series`,
    window: `backtest:{${run}}:window`,
    paging: `backtest:{${run}}:paging`,
    ttlMs: SCRATCH_TTL_MS
  }
  const ordered = rows.map((row, i) => ({ row, i })).sort((a, b) => a.row.time - b.row.time || a.i - b.i).map(({ row }) => row)
  const incidents = simulateIncidents(detection)
  const result: BacktestResult = { rows: rows.length, metrics: new Set(rows.map((r) => r.metric)).size, learning: 0, stale: 0, marks: [], episodes: [], incidents: incidents.incidents }
  const openEpisodes = new Map<string, BacktestEpisode>()
  /** Metrics whose episode going on is confirmed (it pages and keeps its incident open). */
  const paging = new Set<string>()
  // A metric is read as the live API reads a JSON sample of that name without a type (no labels, no metadata).
  const seriesOf = new Map<string, ScoredSeries>()
  const firstValue = new Map<string, number>()
  for (const row of rows) if (!firstValue.has(row.metric)) firstValue.set(row.metric, row.value)
  for (const [metric, value] of firstValue) {
    // (A histogram bucket the live API would leave unscored is replayed as a gauge: it was asked for.)
    const kind = kindOf(metric, undefined, () => undefined, value)
    seriesOf.set(metric, seriesToScore(metric, {}, kind === 'bucket' ? 'gauge' : kind))
  }
  try {
    for (let from = 0; from < ordered.length; from += CHUNK) {
      if (options.deadline !== undefined && Date.now() > options.deadline) throw new BacktestTimeout()
      const chunk = ordered.slice(from, from + CHUNK)
      const now = chunk.at(-1)!.time
      const batch = await scoreServiceBatch(
        redis,
        run,
        detection,
        chunk.map((row) => ({ series: seriesOf.get(row.metric)!, value: row.value, time: row.time, suppressedUpTo: null })),
        now,
        space
      )
      result.learning += batch.learning
      result.stale += batch.stale
      const events = [...batch.anomalies, ...batch.confirmed, ...batch.ended].sort((a, b) => a.index - b.index)
      for (const found of events) recordMark(chunk, found)
    }
    if (ordered.length > 0) incidents.finish(ordered.at(-1)!.time)
    return result
  } finally {
    const models = await redis.hkeys(space.series).catch(() => [] as string[])
    await redis.del(space.series, space.window, space.paging, ...models.map(space.model)).catch(() => 0)
  }

  function recordMark(chunk: BacktestRow[], found: DetectedSampleAnomaly) {
    const row = chunk[found.index]!
    if (found.kind === 'end') {
      const episode = openEpisodes.get(row.metric)
      if (episode) {
        episode.lastAt = found.time
        episode.peakZScore = found.zScore
        openEpisodes.delete(row.metric)
      }
      if (paging.delete(row.metric)) incidents.episodeEnded(found.time)
      return
    }
    const mark = { metric: row.metric, time: found.time, zScore: found.zScore, severity: found.severity }
    // Marks of confirmed episodes page, as in live ingestion; starts and escalations are listed either way.
    if (found.pages) {
      incidents.mark({ ...mark, severity: found.pagingSeverity })
      if (!paging.has(row.metric)) {
        paging.add(row.metric)
        incidents.episodeStarted()
      }
    }
    if (found.kind === 'confirm') return
    result.marks.push({ ...mark, kind: found.kind })
    if (found.kind === 'start') {
      const episode: BacktestEpisode = { metric: row.metric, startedAt: found.time, startValue: row.value, severity: found.severity, peakZScore: found.zScore, escalatedAt: null, lastAt: null }
      result.episodes.push(episode)
      openEpisodes.set(row.metric, episode)
    } else {
      const episode = openEpisodes.get(row.metric)
      if (episode) {
        episode.severity = 'critical'
        episode.escalatedAt = found.time
      }
    }
  }
}

/** The backtest ran past its time budget. */
export class BacktestTimeout extends Error {
  override name = 'BacktestTimeout'
}
