import Type from 'typebox'
import { APPROVAL_MODES, SEVERITIES, type runbooks } from '../../db/schema/index.js'
import { Nullable, Timestamp, Uuid } from '../../lib/schemas.js'
import { ActionParamsSchema, ActionTypeSchema } from '../actions/params.js'
import { METRIC_NAME_PATTERN } from '../services/schemas.js'

export const RunbookBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 120 }),
    match: Type.Object(
      {
        metric: Type.Optional(Type.String({ pattern: METRIC_NAME_PATTERN, description: 'omit to match any metric' })),
        minSeverity: Type.Optional(Type.Enum(SEVERITIES))
      },
      { additionalProperties: false }
    ),
    action: Type.Object({ type: ActionTypeSchema, params: ActionParamsSchema }, { additionalProperties: false }),
    approval: Type.Enum(APPROVAL_MODES, { default: 'manual' }),
    cooldownSeconds: Type.Integer({ minimum: 0, maximum: 7 * 86_400, default: 300 })
  },
  { additionalProperties: false }
)

export const RunbookSchema = Type.Object({
  id: Uuid,
  serviceId: Uuid,
  name: Type.String(),
  match: Type.Object({ metric: Nullable(Type.String()), minSeverity: Nullable(Type.Enum(SEVERITIES)) }),
  action: Type.Object({ type: ActionTypeSchema, params: ActionParamsSchema }),
  approval: Type.Enum(APPROVAL_MODES),
  cooldownSeconds: Type.Integer(),
  createdAt: Timestamp
})

export const presentRunbook = (row: typeof runbooks.$inferSelect) => ({
  id: row.id,
  serviceId: row.serviceId,
  name: row.name,
  match: { metric: row.matchMetric, minSeverity: row.matchMinSeverity },
  action: { type: row.actionType, params: row.actionParams },
  approval: row.approval,
  cooldownSeconds: row.cooldownSeconds,
  createdAt: row.createdAt.toISOString()
})
