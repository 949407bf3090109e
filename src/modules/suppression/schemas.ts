import Type from 'typebox'
import { SEVERITIES, type suppressionRules } from '../../db/schema/index.js'
import { iso, Nullable, NullableTimestamp, TimeInput, Timestamp, Uuid } from '../../lib/schemas.js'

const Glob = Type.String({ pattern: '^[A-Za-z0-9*._:-]{1,128}$', description: '`*` matches any run of characters' })
const Severity = Type.Enum(SEVERITIES)
const ClockTime = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM, 24h' })

export const ScheduleSchema = Type.Object(
  {
    weekdays: Type.Array(Type.Integer({ minimum: 0, maximum: 6 }), {
      minItems: 1,
      maxItems: 7,
      uniqueItems: true,
      description: '0 = Sunday'
    }),
    start: ClockTime,
    end: ClockTime,
    timezone: Type.String({ minLength: 1, maxLength: 64, description: 'IANA time zone, e.g. Europe/Paris' })
  },
  { additionalProperties: false }
)

export const SuppressionRuleBody = Type.Object(
  {
    service: Type.Optional(Glob),
    metric: Type.Optional(Glob),
    maxSeverity: Type.Optional(Severity),
    startsAt: TimeInput,
    endsAt: TimeInput,
    schedule: Type.Optional(ScheduleSchema),
    reason: Type.String({ minLength: 1, maxLength: 500 })
  },
  { additionalProperties: false }
)

export const SuppressionRuleSchema = Type.Object({
  id: Uuid,
  service: Type.String(),
  metric: Type.String(),
  maxSeverity: Nullable(Severity),
  startsAt: Timestamp,
  endsAt: Timestamp,
  schedule: Nullable(ScheduleSchema),
  reason: Type.String(),
  createdBy: Type.String(),
  createdAt: Timestamp,
  endedAt: NullableTimestamp,
  active: Type.Boolean({ description: 'now is within [startsAt, endsAt)' })
})

export const ListRulesQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
    active: Type.Optional(Type.Boolean())
  },
  { additionalProperties: false }
)

export const presentRule = (row: typeof suppressionRules.$inferSelect, now = new Date()) => ({
  id: row.id,
  service: row.servicePattern,
  metric: row.metricPattern,
  maxSeverity: row.maxSeverity,
  startsAt: row.startsAt.toISOString(),
  endsAt: row.endsAt.toISOString(),
  schedule: row.schedule,
  reason: row.reason,
  createdBy: row.createdBy,
  createdAt: row.createdAt.toISOString(),
  endedAt: iso(row.endedAt),
  active: row.startsAt <= now && now < row.endsAt
})
