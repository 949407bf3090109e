import Type from 'typebox'
import { INCIDENT_SOURCES, INCIDENT_STATUSES, SEVERITIES } from '../../db/schema/index.js'
import { Nullable, NullableTimestamp, Timestamp, Uuid } from '../../lib/schemas.js'
import { ActionSchema } from '../actions/schemas.js'
import { AuditEntrySchema } from '../audit/schemas.js'
import { SeriesRefSchema } from '../detection/series.js'

export const IncidentStatusSchema = Type.Enum(INCIDENT_STATUSES)

export const IncidentSchema = Type.Object({
  id: Uuid,
  serviceId: Uuid,
  service: Type.String({ description: 'service name' }),
  title: Type.String(),
  severity: Type.Enum(SEVERITIES),
  status: IncidentStatusSchema,
  flapping: Type.Boolean(),
  source: Type.Enum(INCIDENT_SOURCES),
  dedupKey: Nullable(Type.String()),
  metrics: Type.Array(Type.String()),
  series: Type.Array(SeriesRefSchema, { description: 'the series (metric + labels) whose anomalies it holds, the first 20' }),
  anomalyCount: Type.Integer(),
  peakZScore: Nullable(Type.Number()),
  details: Nullable(Type.Record(Type.String(), Type.Unknown())),
  openedAt: Timestamp,
  acknowledgedAt: NullableTimestamp,
  acknowledgedBy: Nullable(Type.String()),
  resolvedAt: NullableTimestamp,
  resolvedBy: Nullable(Type.String({ description: 'a user or API key id, or "auto"' })),
  resolutionNote: Nullable(Type.String())
})

export const IncidentDetailSchema = Type.Intersect([
  IncidentSchema,
  Type.Object({ timeline: Type.Array(AuditEntrySchema), actions: Type.Array(ActionSchema) })
])

export const ListIncidentsQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
    status: Type.Optional(IncidentStatusSchema),
    service: Type.Optional(Type.String({ maxLength: 63, description: 'service name or id' })),
    severity: Type.Optional(Type.Enum(SEVERITIES)),
    flapping: Type.Optional(Type.Boolean({ description: 'only incidents that are (true) or are not (false) flapping' }))
  },
  { additionalProperties: false }
)

export const ResolveBody = Type.Object(
  { note: Type.Optional(Type.String({ maxLength: 2000 })) },
  { additionalProperties: false }
)
