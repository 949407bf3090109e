import { sql } from 'drizzle-orm'
import { check, pgTable, text, uuid } from 'drizzle-orm/pg-core'
import { at, createdAt, id, oneOf, PLANS } from './columns.js'

export const organizations = pgTable('organizations', {
  id: id(),
  name: text('name').notNull(),
  /** Key of the HMAC signature on outgoing webhook actions. */
  webhookSecret: text('webhook_secret').notNull(),
  createdAt: createdAt()
})

export const SUBSCRIPTION_STATUSES = ['active', 'past_due', 'canceled'] as const

export const subscriptions = pgTable(
  'subscriptions',
  {
    id: id(),
    organizationId: uuid('organization_id')
      .notNull()
      .unique()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    plan: text('plan', { enum: PLANS }).notNull().default('free'),
    status: text('status', { enum: SUBSCRIPTION_STATUSES }).notNull().default('active'),
    createdAt: createdAt(),
    updatedAt: at('updated_at').notNull().defaultNow()
  },
  (t) => [
    check('subscriptions_plan_check', sql.raw(`${t.plan.name} IN (${oneOf(PLANS)})`)),
    check('subscriptions_status_check', sql.raw(`${t.status.name} IN (${oneOf(SUBSCRIPTION_STATUSES)})`))
  ]
)
