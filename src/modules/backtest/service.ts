import type { RedisClient } from '../../redis/client.js'
import type { DetectionConfig } from '../../db/schema/index.js'
import { AppError, errors, type FieldError } from '../../errors.js'
import { MAX_EPOCH_MS } from '../../lib/schemas.js'
import { MAX_SAMPLE_MAGNITUDE } from '../detection/detector.js'
import type { ServicesService } from '../services/service.js'
import { METRIC_NAME_PATTERN } from '../services/schemas.js'
import { detectionOf } from '../services/service.js'
import { BacktestTimeout, runBacktest, type BacktestRow } from './engine.js'
import { MAX_BACKTEST_ROWS, MAX_LISTED, type BacktestBody } from './schemas.js'

/** A backtest gives up after this long (it answers 503 and leaves nothing behind). */
const TIME_BUDGET_MS = 20_000
const MAX_METRICS = 100
const DEFAULT_METRIC = 'value'
const METRIC_NAME = new RegExp(METRIC_NAME_PATTERN)
const SQL_LIKE_TIME = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/

/** ISO-8601, `YYYY-MM-DD HH:MM:SS` (UTC, as NAB and many exports write it) or epoch milliseconds. */
function parseTime(input: string | number): number {
  if (typeof input === 'number') return input
  const text = input.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text)
  const local = SQL_LIKE_TIME.exec(text)
  return Date.parse(local ? `${local[1]}T${local[2]}Z` : text)
}

/** A refusal names at most this many bad rows; parsing stops there. */
const MAX_PROBLEMS = 20

/**
 * The rows of a backtest from its JSON samples or its CSV; bad rows are named (the first 20) and nothing
 * runs. The CSV is walked line by line and parsing stops at the first row past the limit, so a huge body
 * costs no more than the rows it may hold.
 */
function rowsOf(body: BacktestBody): BacktestRow[] {
  if ((body.samples === undefined) === (body.csv === undefined)) {
    throw errors.validation('send the history as samples or as csv', [{ path: '/body', message: 'exactly one of samples and csv' }])
  }
  const rows: BacktestRow[] = []
  const problems: FieldError[] = []
  const add = (path: string, metric: string, value: number, time: number) => {
    if (!Number.isFinite(value)) problems.push({ path, message: 'value must be a finite number' })
    else if (Math.abs(value) > MAX_SAMPLE_MAGNITUDE) problems.push({ path, message: `value must be within ±${MAX_SAMPLE_MAGNITUDE}` })
    else if (!Number.isFinite(time) || time < 0 || time > MAX_EPOCH_MS) problems.push({ path, message: 'timestamp is not a valid time' })
    else if (!METRIC_NAME.test(metric)) problems.push({ path, message: 'metric is not a valid metric name' })
    else rows.push({ metric, value, time })
  }
  if (body.samples) {
    for (const [i, sample] of body.samples.entries()) {
      add(`/body/samples/${i}`, sample.metric ?? DEFAULT_METRIC, sample.value, parseTime(sample.timestamp))
      if (problems.length >= MAX_PROBLEMS) break
    }
  } else {
    const csv = body.csv!
    for (let start = 0, line = 1; start < csv.length && problems.length < MAX_PROBLEMS; line++) {
      const newline = csv.indexOf('\n', start)
      const end = newline === -1 ? csv.length : newline
      const text = csv.slice(start, end).replace(/\r$/, '')
      start = end + 1
      if (text.trim() === '' || (line === 1 && /^\s*timestamp\s*,/i.test(text))) continue
      if (rows.length >= MAX_BACKTEST_ROWS) {
        problems.push({ path: `/body/csv/line ${line}`, message: `more than ${MAX_BACKTEST_ROWS} rows` })
        break
      }
      const [time, value, metric, extra] = text.split(',')
      if (value === undefined || extra !== undefined) problems.push({ path: `/body/csv/line ${line}`, message: 'expected timestamp,value[,metric]' })
      else add(`/body/csv/line ${line}`, metric?.trim() || DEFAULT_METRIC, value.trim() === '' ? NaN : Number(value), parseTime(time!))
    }
  }
  if (problems.length > 0) throw errors.validation(`${problems.length} rows are invalid`, problems)
  if (new Set(rows.map((r) => r.metric)).size > MAX_METRICS) {
    throw errors.validation(`at most ${MAX_METRICS} metrics per backtest`, [{ path: '/body', message: 'too many metrics' }])
  }
  return rows
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString())

/**
 * `POST /v1/services/:id/backtest`: what the service's detection (or the settings to try) would have found
 * in a history, through the live scoring script on scratch keys and the incident lifecycle on a simulated
 * clock. Nothing live is touched.
 */
export function createBacktestService(deps: { redis: RedisClient; services: Pick<ServicesService, 'get'> }) {
  async function backtest(organizationId: string, serviceId: string, body: BacktestBody) {
    // A budget of real computing time, whatever the service's clock says; parsing counts too.
    const deadline = Date.now() + TIME_BUDGET_MS
    const service = await deps.services.get(organizationId, serviceId)
    const rows = rowsOf(body)
    const stored = detectionOf(service)
    const detection: DetectionConfig = { ...stored, ...body.detection, metrics: body.detection?.metrics ?? stored.metrics }
    let result
    try {
      result = await runBacktest(deps.redis, detection, rows, { deadline })
    } catch (err) {
      if (err instanceof BacktestTimeout) throw new AppError(503, 'backtest_timeout', `the backtest did not finish within ${TIME_BUDGET_MS / 1000} s; send less history`, undefined, { 'retry-after': '60' })
      throw err
    }
    const from = rows.reduce((min, r) => Math.min(min, r.time), Infinity)
    const to = rows.reduce((max, r) => Math.max(max, r.time), -Infinity)
    return {
      rows: result.rows,
      metrics: result.metrics,
      learning: result.learning,
      stale: result.stale,
      from: rows.length > 0 ? iso(from) : null,
      to: rows.length > 0 ? iso(to) : null,
      counts: {
        episodes: result.episodes.length,
        escalations: result.marks.filter((m) => m.kind === 'escalation').length,
        incidentsOpened: result.incidents.length,
        incidentsEscalated: result.incidents.filter((i) => i.escalatedAt.length > 0).length,
        incidentsReopened: result.incidents.reduce((n, i) => n + i.reopenedAt.length, 0),
        incidentsResolved: result.incidents.filter((i) => i.resolvedAt !== null).length
      },
      episodes: result.episodes.slice(0, MAX_LISTED).map((e) => ({ ...e, startedAt: iso(e.startedAt)!, escalatedAt: iso(e.escalatedAt), lastAt: iso(e.lastAt) })),
      incidents: result.incidents.slice(0, MAX_LISTED).map((i) => ({
        ...i,
        openedAt: iso(i.openedAt)!,
        escalatedAt: i.escalatedAt.map((t) => iso(t)!),
        reopenedAt: i.reopenedAt.map((t) => iso(t)!),
        resolvedAt: iso(i.resolvedAt)
      })),
      detection: { ...detection }
    }
  }
  return { backtest }
}
export type BacktestService = ReturnType<typeof createBacktestService>
