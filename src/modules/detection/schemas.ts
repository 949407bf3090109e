import Type, { type Static } from 'typebox'
import { SEVERITIES } from '../../db/schema/index.js'
import { Timestamp } from '../../lib/schemas.js'
import { SeriesFields } from './series.js'

/** The fields of an anomaly: the sample at which an episode of one series started or escalated. */
export const AnomalyFields = {
  kind: Type.Enum(['start', 'escalation'] as const, {
    description: 'an anomaly episode (consecutive anomalous samples of one series) starting, or first turning critical'
  }),
  metric: Type.String(),
  ...SeriesFields,
  value: Type.Number({ description: 'the value scored: the sample\'s, or a counter\'s per-second rate' }),
  expected: Type.Number(),
  zScore: Type.Number(),
  severity: Type.Enum(SEVERITIES),
  at: Timestamp,
  suppressed: Type.Boolean(),
  confirmed: Type.Boolean({
    description:
      'the episode was confirmed when this was reported (it had lasted the service\'s confirmSeconds, or its series had 1,000 samples of history): only confirmed episodes open, escalate or keep open incidents'
  })
}
/** An anomaly of one service, as kept in its recent window (`recent_anomalies:{serviceId}`). */
export const AnomalySchema = Type.Object(AnomalyFields)
export type Anomaly = Static<typeof AnomalySchema>

/** An anomaly named with its service, as ingestion reports it. */
export const ServiceAnomalySchema = Type.Object({ service: Type.String(), ...AnomalyFields })
export type ServiceAnomaly = Static<typeof ServiceAnomalySchema>
