import { sql } from 'drizzle-orm'
import { check, index, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core'
import { at, createdAt, id, oneOf, SEVERITIES } from './columns.js'
import { organizations } from './organizations.js'

export interface WeeklySchedule {
  weekdays: number[]
  start: string
  end: string
  timezone: string
}

export const suppressionRules = pgTable(
  'suppression_rules',
  {
    id: id(),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    servicePattern: text('service_pattern').notNull().default('*'),
    metricPattern: text('metric_pattern').notNull().default('*'),
    maxSeverity: text('max_severity', { enum: SEVERITIES }),
    startsAt: at('starts_at').notNull(),
    endsAt: at('ends_at').notNull(),
    schedule: jsonb('schedule').$type<WeeklySchedule>(),
    reason: text('reason').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
    endedAt: at('ended_at'),
    endedBy: text('ended_by')
  },
  (t) => [
    index('suppression_rules_organization_idx').on(t.organizationId, t.id),
    index('suppression_rules_active_idx').on(t.organizationId, t.endsAt),
    check('suppression_rules_window_check', sql`ends_at >= starts_at`),
    check('suppression_rules_severity_check', sql.raw(`max_severity IN (${oneOf(SEVERITIES)})`))
  ]
)
