import Type from 'typebox'
import { ROLES, PLANS } from '../db/schema/index.js'

export const Uuid = Type.String({ format: 'uuid' })
export const IdParams = Type.Object({ id: Uuid })
export const Email = Type.String({ format: 'email', maxLength: 254 })
export const Password = Type.String({ minLength: 12, maxLength: 256 })
export const Timestamp = Type.String({ format: 'date-time' })
export const NullableTimestamp = Type.Union([Timestamp, Type.Null()])
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])
export const RoleSchema = Type.Enum(ROLES)
export const PlanSchema = Type.Enum(PLANS)
/** The largest epoch milliseconds a Date holds (±100,000,000 days). */
export const MAX_EPOCH_MS = 8_640_000_000_000_000
/** Requests accept ISO-8601 strings or epoch milliseconds (within what a Date holds: `1e17` is a 400, not a 500). */
export const TimeInput = Type.Union([Type.String({ format: 'date-time' }), Type.Integer({ minimum: 0, maximum: MAX_EPOCH_MS })])

export const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null)
export const toDate = (input: string | number) => new Date(input)
