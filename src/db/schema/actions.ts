import { sql } from 'drizzle-orm'
import { check, index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { at, createdAt, id, oneOf } from './columns.js'
import { incidents } from './incidents.js'
import { organizations } from './organizations.js'
import { RUNBOOK_ACTION_TYPES, runbooks, services } from './services.js'

export const ACTION_STATUSES = [
  'pending_approval',
  'approved',
  'queued',
  'running',
  'succeeded',
  'failed',
  'rejected',
  'expired',
  'needs_review'
] as const
export type ActionStatus = (typeof ACTION_STATUSES)[number]
export const VERIFICATION_STATES = ['pending', 'recovered', 'not_recovered', 'skipped'] as const

/** The actions table is also the dispatch outbox: approved rows without dispatched_at are still to enqueue. */
export const actions = pgTable(
  'actions',
  {
    id: id(),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    incidentId: uuid('incident_id')
      .notNull()
      .references(() => incidents.id, { onDelete: 'cascade' }),
    serviceId: uuid('service_id')
      .notNull()
      .references(() => services.id),
    runbookId: uuid('runbook_id').references(() => runbooks.id, { onDelete: 'set null' }),
    type: text('type', { enum: RUNBOOK_ACTION_TYPES }).notNull(),
    params: jsonb('params').$type<Record<string, unknown>>().notNull(),
    reason: text('reason'),
    status: text('status', { enum: ACTION_STATUSES }).notNull().default('pending_approval'),
    /** Why an action waits for approval (e.g. the plan does not allow auto-remediation). */
    statusReason: text('status_reason'),
    requestedBy: text('requested_by').notNull(),
    approvedBy: text('approved_by'),
    rejectedBy: text('rejected_by'),
    attempts: integer('attempts').notNull().default(0),
    result: jsonb('result').$type<Record<string, unknown>>(),
    error: text('error'),
    verificationState: text('verification_state', { enum: VERIFICATION_STATES }).notNull().default('pending'),
    verification: jsonb('verification').$type<Record<string, unknown>>(),
    createdAt: createdAt(),
    updatedAt: at('updated_at').notNull().defaultNow(),
    approvedAt: at('approved_at'),
    dispatchedAt: at('dispatched_at'),
    leaseExpiresAt: at('lease_expires_at'),
    startedAt: at('started_at'),
    finishedAt: at('finished_at'),
    expiresAt: at('expires_at').notNull()
  },
  (t) => [
    index('actions_organization_idx').on(t.organizationId, t.id),
    index('actions_incident_idx').on(t.incidentId, t.id),
    index('actions_outbox_idx').on(t.approvedAt).where(sql`status = 'approved'`),
    index('actions_pending_expiry_idx').on(t.expiresAt).where(sql`status = 'pending_approval'`),
    // One running action per service at a time.
    uniqueIndex('actions_one_running_per_service').on(t.serviceId).where(sql`status = 'running'`),
    check('actions_status_check', sql.raw(`status IN (${oneOf(ACTION_STATUSES)})`)),
    check('actions_type_check', sql.raw(`type IN (${oneOf(RUNBOOK_ACTION_TYPES)})`)),
    check('actions_verification_check', sql.raw(`verification_state IN (${oneOf(VERIFICATION_STATES)})`)),
    check('actions_attempts_check', sql`attempts >= 0`)
  ]
)
