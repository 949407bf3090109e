import { sql } from 'drizzle-orm'
import { check, index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { at, createdAt, id, oneOf, SEVERITIES } from './columns.js'
import { organizations } from './organizations.js'

export interface MetricDetection {
  direction: 'up' | 'down' | 'both'
  zThreshold?: number
}
export type Seasonality = 'auto' | 'none' | 'daily' | 'weekly'
export interface DetectionConfig {
  zThreshold: number
  minSamples: number
  minSpanSeconds: number
  seasonality: Seasonality
  quietPeriodSeconds: number
  confirmSeconds: number
  openAfterWarnings: number
  warningWindowSeconds: number
  metrics: Record<string, MetricDetection>
}

export const services = pgTable(
  'services',
  {
    id: id(),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description'),
    environment: text('environment'),
    detection: jsonb('detection').$type<DetectionConfig>().notNull(),
    createdAt: createdAt(),
    updatedAt: at('updated_at').notNull().defaultNow(),
    /** Deleted services keep their incidents and audit trail; the name becomes free again. */
    deletedAt: at('deleted_at')
  },
  (t) => [
    uniqueIndex('services_name_unique').on(t.organizationId, t.name).where(sql`deleted_at IS NULL`),
    index('services_organization_idx').on(t.organizationId, t.id).where(sql`deleted_at IS NULL`)
  ]
)

export const RUNBOOK_ACTION_TYPES = ['webhook', 'dry_run'] as const
export const APPROVAL_MODES = ['manual', 'auto'] as const

export const runbooks = pgTable(
  'runbooks',
  {
    id: id(),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    serviceId: uuid('service_id')
      .notNull()
      .references(() => services.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    matchMetric: text('match_metric'),
    matchMinSeverity: text('match_min_severity', { enum: SEVERITIES }),
    actionType: text('action_type', { enum: RUNBOOK_ACTION_TYPES }).notNull(),
    actionParams: jsonb('action_params').$type<Record<string, unknown>>().notNull(),
    approval: text('approval', { enum: APPROVAL_MODES }).notNull().default('manual'),
    cooldownSeconds: integer('cooldown_seconds').notNull().default(300),
    createdAt: createdAt(),
    deletedAt: at('deleted_at')
  },
  (t) => [
    index('runbooks_service_idx').on(t.serviceId, t.id).where(sql`deleted_at IS NULL`),
    check('runbooks_action_type_check', sql.raw(`action_type IN (${oneOf(RUNBOOK_ACTION_TYPES)})`)),
    check('runbooks_approval_check', sql.raw(`approval IN (${oneOf(APPROVAL_MODES)})`)),
    check('runbooks_min_severity_check', sql.raw(`match_min_severity IN (${oneOf(SEVERITIES)})`)),
    check('runbooks_cooldown_check', sql`cooldown_seconds >= 0`)
  ]
)
