import { sql } from 'drizzle-orm'
import { check, index, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core'
import { id, oneOf, at } from './columns.js'
import { organizations } from './organizations.js'

export const ACTOR_TYPES = ['user', 'api_key', 'system'] as const
export type ActorType = (typeof ACTOR_TYPES)[number]

/** Append-only; the id comes from the writer so a replayed dead-letter entry cannot land twice. */
export const auditLog = pgTable(
  'audit_log',
  {
    id: id(),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    at: at('at').notNull().defaultNow(),
    actorType: text('actor_type', { enum: ACTOR_TYPES }).notNull(),
    actorId: text('actor_id'),
    action: text('action').notNull(),
    resourceType: text('resource_type').notNull(),
    resourceId: text('resource_id').notNull(),
    before: jsonb('before'),
    after: jsonb('after'),
    requestId: text('request_id')
  },
  (t) => [
    index('audit_log_organization_idx').on(t.organizationId, t.id),
    index('audit_log_resource_idx').on(t.organizationId, t.resourceType, t.resourceId, t.id),
    check('audit_log_actor_type_check', sql.raw(`actor_type IN (${oneOf(ACTOR_TYPES)})`))
  ]
)
