import { sql } from 'drizzle-orm'
import { check, integer, jsonb, pgTable, primaryKey, text, uuid, index } from 'drizzle-orm/pg-core'
import { at, createdAt, oneOf } from './columns.js'
import { organizations } from './organizations.js'

export const IDEMPOTENCY_STATUSES = ['in_progress', 'completed'] as const

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    /** Method and route the key was first used on. */
    scope: text('scope').notNull(),
    requestHash: text('request_hash').notNull(),
    status: text('status', { enum: IDEMPOTENCY_STATUSES }).notNull().default('in_progress'),
    responseStatus: integer('response_status'),
    responseBody: jsonb('response_body'),
    createdAt: createdAt(),
    expiresAt: at('expires_at').notNull()
  },
  (t) => [
    primaryKey({ columns: [t.organizationId, t.key] }),
    index('idempotency_keys_expires_idx').on(t.expiresAt),
    check('idempotency_keys_status_check', sql.raw(`status IN (${oneOf(IDEMPOTENCY_STATUSES)})`))
  ]
)
