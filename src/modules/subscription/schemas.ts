import Type from 'typebox'
import type { subscriptions } from '../../db/schema/index.js'
import { PlanSchema } from '../../lib/schemas.js'
import { PLAN_LIMITS } from './plans.js'

export const LimitsSchema = Type.Object({
  maxServices: Type.Union([Type.Integer(), Type.Null()], { description: 'null = unlimited' }),
  autoRemediation: Type.Boolean(),
  ingestPerMinute: Type.Integer({ description: 'metric samples per minute for the organization' }),
  requestsPerMinute: Type.Integer({ description: 'API requests per minute per credential' }),
  maxSeriesPerWrite: Type.Integer({ description: 'series in one Prometheus remote_write request' }),
  maxSamplesPerWrite: Type.Integer({ description: 'samples in one Prometheus remote_write request' }),
  backtestsPerMinute: Type.Integer({ description: 'POST /v1/services/{id}/backtest requests per minute per organization' }),
  activeSeries: Type.Integer({ description: 'series (metric name + label set) with a sample in the last hour, per organization' }),
  suppressionRules: Type.Integer({ description: 'suppression rules not yet ended, per organization' })
})

export const SubscriptionSchema = Type.Object({
  plan: PlanSchema,
  status: Type.Union([Type.Literal('active'), Type.Literal('past_due'), Type.Literal('canceled')]),
  limits: LimitsSchema,
  updatedAt: Type.String({ format: 'date-time' })
})

export const presentSubscription = (row: Pick<typeof subscriptions.$inferSelect, 'plan' | 'status' | 'updatedAt'>) => ({
  plan: row.plan,
  status: row.status,
  limits: PLAN_LIMITS[row.plan],
  updatedAt: row.updatedAt.toISOString()
})
