import Type from 'typebox'
import { RoleSchema, Uuid } from '../../lib/schemas.js'

export const UserSchema = Type.Object(
  { id: Uuid, email: Type.String(), role: RoleSchema, createdAt: Type.String({ format: 'date-time' }) }
)
