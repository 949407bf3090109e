import { timestamp, uuid } from 'drizzle-orm/pg-core'
import { v7 as uuidv7 } from 'uuid'

/** Time-ordered ids: lists page by id alone, newest first, without a separate sort key. */
export const id = () => uuid('id').primaryKey().$defaultFn(() => uuidv7())
export const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow()
export const at = (name: string) => timestamp(name, { withTimezone: true })

export const ROLES = ['agent', 'operator', 'admin', 'owner'] as const
export type Role = (typeof ROLES)[number]
export const PLANS = ['free', 'team', 'enterprise'] as const
export type Plan = (typeof PLANS)[number]
export const SEVERITIES = ['warning', 'critical'] as const
export type Severity = (typeof SEVERITIES)[number]

/** `col IN ('a','b')` for check constraints over a fixed vocabulary. */
export const oneOf = (values: readonly string[]) => values.map((v) => `'${v}'`).join(', ')
