import Type from 'typebox'
import { Email, Password, PlanSchema, RoleSchema, Uuid } from '../../lib/schemas.js'
import { LimitsSchema } from '../subscription/schemas.js'
import { UserSchema } from '../users/schemas.js'

export const SignupBody = Type.Object(
  { email: Email, password: Password, organization: Type.String({ minLength: 1, maxLength: 120 }) },
  { additionalProperties: false }
)
export const LoginBody = Type.Object(
  { email: Email, password: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false }
)
export const RefreshBody = Type.Object(
  { refreshToken: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false }
)

export const TokenPair = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String({ description: 'single use: each refresh returns a new one' }),
  expiresIn: Type.Integer({ description: 'access token lifetime in seconds' })
})

export const OrganizationSchema = Type.Object(
  { id: Uuid, name: Type.String(), plan: PlanSchema }
)

export const SignupReply = Type.Object({
  user: UserSchema,
  organization: OrganizationSchema,
  accessToken: Type.String(),
  refreshToken: Type.String(),
  expiresIn: Type.Integer()
})

export const MeReply = Type.Object({
  user: Type.Union([UserSchema, Type.Null()]),
  apiKey: Type.Union([Type.Object({ id: Uuid, name: Type.String(), role: RoleSchema }), Type.Null()]),
  organization: OrganizationSchema,
  role: RoleSchema,
  plan: PlanSchema,
  limits: LimitsSchema
})
