import Type, { type Static } from 'typebox'
import { SEVERITIES } from '../../db/schema/index.js'
import { Timestamp } from '../../lib/schemas.js'

/** The fields of an anomaly: one sample that left its baseline's band. */
export const AnomalyFields = {
  metric: Type.String(),
  value: Type.Number(),
  expected: Type.Number(),
  zScore: Type.Number(),
  severity: Type.Enum(SEVERITIES),
  at: Timestamp,
  suppressed: Type.Boolean()
}
/** An anomaly of one service, as kept in its recent window (`recent_anomalies:{serviceId}`). */
export const AnomalySchema = Type.Object(AnomalyFields)
export type Anomaly = Static<typeof AnomalySchema>

/** An anomaly named with its service, as ingestion reports it. */
export const ServiceAnomalySchema = Type.Object({ service: Type.String(), ...AnomalyFields })
export type ServiceAnomaly = Static<typeof ServiceAnomalySchema>
