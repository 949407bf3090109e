import Type, { type Static } from 'typebox'
import { SEVERITIES } from '../../db/schema/index.js'
import { Uuid } from '../../lib/schemas.js'
import { ServiceAnomalySchema } from '../detection/schemas.js'
import { DECLARED_TYPES, LabelsSchema } from '../detection/series.js'

export const MAX_SAMPLES = 1000

export const Sample = Type.Object(
  {
    service: Type.String({ minLength: 1, maxLength: 256, description: 'service name; unknown names are registered within the plan' }),
    metric: Type.String({ minLength: 1, maxLength: 256 }),
    labels: Type.Optional(LabelsSchema),
    type: Type.Optional(
      Type.Enum(DECLARED_TYPES, {
        description: 'counter: scored on its per-second rate, resets handled; default: from Prometheus metadata or the name (`_total`, `_count`, `_sum` are counters)'
      })
    ),
    value: Type.Number({ description: 'a finite number' }),
    // Checked per sample (invalid_timestamp, timestamp_in_future), so one bad clock does not sink the batch.
    timestamp: Type.Optional(
      Type.Union([Type.String({ maxLength: 64 }), Type.Number()], { description: 'ISO-8601 or epoch milliseconds; default: now' })
    )
  },
  { additionalProperties: false }
)
export type Sample = Static<typeof Sample>

export const MetricsBody = Type.Object(
  { samples: Type.Array(Sample, { minItems: 1, maxItems: MAX_SAMPLES }) },
  { additionalProperties: false }
)

export const REJECTION_CODES = [
  'non_finite_value',
  'value_out_of_range',
  'invalid_service_name',
  'invalid_metric_name',
  'invalid_timestamp',
  'timestamp_in_future',
  'plan_limit',
  'series_limit'
] as const
export type RejectionCode = (typeof REJECTION_CODES)[number]


export const MetricsReply = Type.Object({
  accepted: Type.Integer({ description: 'samples taken (stale ones included: kept for the record, not learned)' }),
  rejected: Type.Array(Type.Object({ index: Type.Integer(), code: Type.Enum(REJECTION_CODES), detail: Type.String() })),
  anomalies: Type.Array(ServiceAnomalySchema),
  incidents: Type.Array(
    Type.Object({ id: Uuid, service: Type.String(), status: Type.String(), severity: Type.Enum(SEVERITIES), created: Type.Boolean() })
  ),
  learning: Type.Integer({ description: 'samples that fed a baseline still warming up (below minSamples or minSpanSeconds)' }),
  stale: Type.Integer({ description: 'samples older than their series, not learned' }),
  ignored: Type.Integer({ description: 'samples of histogram buckets: taken, not scored one by one' })
})
