import Type from 'typebox'
import { ACTION_STATUSES, RUNBOOK_ACTION_TYPES, VERIFICATION_STATES, type actions } from '../../db/schema/index.js'
import type { Principal } from '../../lib/context.js'
import { actionShownTo } from '../../lib/redact.js'
import { iso, Nullable, NullableTimestamp, Timestamp, Uuid } from '../../lib/schemas.js'

export const ActionSchema = Type.Object({
  id: Uuid,
  incidentId: Uuid,
  serviceId: Uuid,
  runbookId: Nullable(Uuid),
  type: Type.Enum(RUNBOOK_ACTION_TYPES),
  params: Type.Record(Type.String(), Type.Unknown(), {
    description:
      'As proposed, for admins and owners. Below admin, a webhook\'s header values, URL user and password, and query values whose names look secret (token, key, secret, password, signature, auth…) read "[redacted]"; header names are kept.'
  }),
  reason: Nullable(Type.String()),
  status: Type.Enum(ACTION_STATUSES),
  statusReason: Nullable(Type.String()),
  requestedBy: Type.String(),
  approvedBy: Nullable(Type.String()),
  attempts: Type.Integer(),
  result: Nullable(Type.Record(Type.String(), Type.Unknown())),
  error: Nullable(Type.String()),
  verification: Type.Object({
    state: Type.Enum(VERIFICATION_STATES),
    details: Nullable(Type.Record(Type.String(), Type.Unknown()))
  }),
  createdAt: Timestamp,
  approvedAt: NullableTimestamp,
  startedAt: NullableTimestamp,
  finishedAt: NullableTimestamp,
  expiresAt: Timestamp
})

export const presentAction = (row: typeof actions.$inferSelect) => ({
  id: row.id,
  incidentId: row.incidentId,
  serviceId: row.serviceId,
  runbookId: row.runbookId,
  type: row.type,
  params: row.params,
  reason: row.reason,
  status: row.status,
  statusReason: row.statusReason,
  requestedBy: row.requestedBy,
  approvedBy: row.approvedBy,
  attempts: row.attempts,
  result: row.result,
  error: row.error,
  verification: { state: row.verificationState, details: row.verification },
  createdAt: row.createdAt.toISOString(),
  approvedAt: iso(row.approvedAt),
  startedAt: iso(row.startedAt),
  finishedAt: iso(row.finishedAt),
  expiresAt: row.expiresAt.toISOString()
})

/** presentAction for an answer to `principal`: below admin, receivers' secrets in params are redacted. */
export const presentActionTo = (principal: Principal) => (row: typeof actions.$inferSelect) => actionShownTo(principal.role, presentAction(row))
