import Type, { type Static } from 'typebox'
import { SEVERITIES } from '../../db/schema/index.js'
import { Nullable, Timestamp } from '../../lib/schemas.js'
import { DetectionPatchSchema, METRIC_NAME_PATTERN } from '../services/schemas.js'

export const MAX_BACKTEST_ROWS = 100_000
/** Listed episodes and incidents in a reply, at most (the counts cover them all). */
export const MAX_LISTED = 1000

export const BacktestBody = Type.Object(
  {
    samples: Type.Optional(
      Type.Array(
        Type.Object(
          {
            metric: Type.Optional(Type.String({ pattern: METRIC_NAME_PATTERN, description: 'default "value"' })),
            value: Type.Number(),
            timestamp: Type.Union([Type.String({ maxLength: 64 }), Type.Number()], { description: 'ISO-8601 or epoch milliseconds' })
          },
          { additionalProperties: false }
        ),
        { maxItems: MAX_BACKTEST_ROWS }
      )
    ),
    csv: Type.Optional(
      Type.String({
        maxLength: 8 * 1024 * 1024,
        description: 'lines `timestamp,value[,metric]` (an optional header line is skipped); timestamps ISO-8601, `YYYY-MM-DD HH:MM:SS` (UTC) or epoch milliseconds'
      })
    ),
    detection: Type.Optional(DetectionPatchSchema)
  },
  { additionalProperties: false, description: 'history as `samples` or as `csv` (exactly one), up to 100,000 rows; `detection` settings to try over the service\'s own' }
)
export type BacktestBody = Static<typeof BacktestBody>

const Episode = Type.Object({
  metric: Type.String(),
  startedAt: Timestamp,
  startValue: Type.Number(),
  severity: Type.Enum(SEVERITIES),
  peakZScore: Type.Number(),
  escalatedAt: Nullable(Timestamp),
  lastAt: Type.Union([Timestamp, Type.Null()], { description: 'the last anomalous sample, once the episode ended; null if it was still going' })
})

const Incident = Type.Object({
  openedAt: Timestamp,
  severity: Type.Enum(SEVERITIES),
  metrics: Type.Array(Type.String()),
  anomalyCount: Type.Integer(),
  peakZScore: Nullable(Type.Number()),
  escalatedAt: Type.Array(Timestamp),
  reopenedAt: Type.Array(Timestamp),
  resolvedAt: Type.Union([Timestamp, Type.Null()], { description: 'when the quiet-period sweep would have resolved it; null if still open at the end' }),
  flapping: Type.Boolean()
})

export const BacktestReply = Type.Object({
  rows: Type.Integer(),
  metrics: Type.Integer(),
  learning: Type.Integer({ description: 'rows that fed a baseline still warming up' }),
  stale: Type.Integer({ description: 'rows older than their series\' previous one (not learned)' }),
  from: Nullable(Timestamp),
  to: Nullable(Timestamp),
  counts: Type.Object({
    episodes: Type.Integer(),
    escalations: Type.Integer(),
    incidentsOpened: Type.Integer(),
    incidentsEscalated: Type.Integer(),
    incidentsReopened: Type.Integer(),
    incidentsResolved: Type.Integer()
  }),
  episodes: Type.Array(Episode, { description: `the first ${MAX_LISTED}` }),
  incidents: Type.Array(Incident, { description: `the first ${MAX_LISTED}` }),
  detection: Type.Record(Type.String(), Type.Unknown(), { description: 'the settings the backtest ran with' })
})
