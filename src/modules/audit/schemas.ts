import Type from 'typebox'
import type { auditLog } from '../../db/schema/index.js'
import { Nullable, Timestamp, Uuid } from '../../lib/schemas.js'

export const AuditEntrySchema = Type.Object({
  id: Uuid,
  at: Timestamp,
  actor: Type.Object({
    type: Type.Union([Type.Literal('user'), Type.Literal('api_key'), Type.Literal('system')]),
    id: Nullable(Type.String())
  }),
  action: Type.String({ description: 'e.g. incident.acknowledged' }),
  resourceType: Type.String(),
  resourceId: Type.String(),
  before: Type.Unknown(),
  after: Type.Unknown(),
  requestId: Nullable(Type.String())
})

export const presentAudit = (row: typeof auditLog.$inferSelect) => ({
  id: row.id,
  at: row.at.toISOString(),
  actor: { type: row.actorType, id: row.actorId },
  action: row.action,
  resourceType: row.resourceType,
  resourceId: row.resourceId,
  before: row.before,
  after: row.after,
  requestId: row.requestId
})
