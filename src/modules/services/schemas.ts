import Type from 'typebox'
import { Nullable, Timestamp, Uuid } from '../../lib/schemas.js'

export const SERVICE_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,62}$'
export const METRIC_NAME_PATTERN = '^[A-Za-z_:][A-Za-z0-9_:.-]{0,127}$'

export const DETECTION_DEFAULTS = {
  /** in σ-equivalents of the series' spread (the larger of its mean absolute and its 99th-percentile residual) */
  zThreshold: 4,
  /** a baseline scores only with this many samples… */
  minSamples: 30,
  /** …spanning at least this long */
  minSpanSeconds: 1800,
  /** daily and weekly shape: learned and used when it explains the series (auto), never, or always */
  seasonality: 'auto' as 'auto' | 'none' | 'daily' | 'weekly',
  quietPeriodSeconds: 600,
  /**
   * An anomaly episode pages (opens, escalates or keeps open an incident) once it has lasted this long, like
   * a Prometheus rule's `for: 1m`; 0 pages at its first anomalous sample. A series with 1,000 samples of
   * history pages at once.
   */
  confirmSeconds: 60,
  /** An incident opens on one critical anomaly, or on this many warnings within `warningWindowSeconds`. */
  openAfterWarnings: 3,
  warningWindowSeconds: 300
}

const MetricDetection = Type.Object(
  {
    direction: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('both')], { default: 'both' }),
    zThreshold: Type.Optional(Type.Number({ minimum: 0.5, maximum: 100 }))
  },
  { additionalProperties: false }
)

const detectionFields = (withDefaults: boolean) => {
  const d = <T extends object>(value: unknown, options: T) => (withDefaults ? { ...options, default: value } : options)
  return {
    zThreshold: Type.Number(d(DETECTION_DEFAULTS.zThreshold, { minimum: 0.5, maximum: 100 })),
    minSamples: Type.Integer(d(DETECTION_DEFAULTS.minSamples, { minimum: 2, maximum: 100_000 })),
    minSpanSeconds: Type.Integer(d(DETECTION_DEFAULTS.minSpanSeconds, { minimum: 0, maximum: 604_800 })),
    seasonality: Type.Enum(['auto', 'none', 'daily', 'weekly'] as const, d(DETECTION_DEFAULTS.seasonality, {})),
    quietPeriodSeconds: Type.Integer(d(DETECTION_DEFAULTS.quietPeriodSeconds, { minimum: 1, maximum: 604_800 })),
    confirmSeconds: Type.Integer(
      d(DETECTION_DEFAULTS.confirmSeconds, {
        minimum: 0,
        maximum: 86_400,
        description: 'an anomaly episode pages once it has lasted this long (0: at once); a series with 1,000 samples of history pages at once'
      })
    ),
    openAfterWarnings: Type.Integer(d(DETECTION_DEFAULTS.openAfterWarnings, { minimum: 1, maximum: 1000 })),
    warningWindowSeconds: Type.Integer(d(DETECTION_DEFAULTS.warningWindowSeconds, { minimum: 10, maximum: 3600 })),
    metrics: Type.Record(Type.String({ pattern: METRIC_NAME_PATTERN }), MetricDetection, {
      additionalProperties: false,
      maxProperties: 200,
      ...(withDefaults ? { default: {} } : {})
    })
  }
}

/** Full detection config with defaults (create); a partial one merged over the stored config (update). */
export const DetectionSchema = Type.Object(detectionFields(true), { additionalProperties: false })
export const DetectionPatchSchema = Type.Partial(Type.Object(detectionFields(false), { additionalProperties: false }))

const Name = Type.String({ pattern: SERVICE_NAME_PATTERN, description: 'lower-case, 1-63 characters' })
const Description = Type.String({ maxLength: 1000 })
const Environment = Type.String({ minLength: 1, maxLength: 64 })

export const CreateServiceBody = Type.Object(
  {
    name: Name,
    description: Type.Optional(Description),
    environment: Type.Optional(Environment),
    detection: Type.Optional(DetectionSchema)
  },
  { additionalProperties: false }
)

export const UpdateServiceBody = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Nullable(Description)),
    environment: Type.Optional(Nullable(Environment)),
    detection: Type.Optional(DetectionPatchSchema)
  },
  { additionalProperties: false, minProperties: 1 }
)

export const ServiceSchema = Type.Object({
  id: Uuid,
  name: Type.String(),
  description: Nullable(Type.String()),
  environment: Nullable(Type.String()),
  detection: Type.Object({
    zThreshold: Type.Number(),
    minSamples: Type.Integer(),
    minSpanSeconds: Type.Integer(),
    seasonality: Type.Enum(['auto', 'none', 'daily', 'weekly'] as const),
    quietPeriodSeconds: Type.Integer(),
    confirmSeconds: Type.Integer(),
    openAfterWarnings: Type.Integer(),
    warningWindowSeconds: Type.Integer(),
    metrics: Type.Record(
      Type.String(),
      Type.Object({ direction: Type.String(), zThreshold: Type.Optional(Type.Number()) })
    )
  }),
  createdAt: Timestamp,
  updatedAt: Timestamp
})
