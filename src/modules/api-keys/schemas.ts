import Type from 'typebox'
import { iso, NullableTimestamp, RoleSchema, Timestamp, Uuid } from '../../lib/schemas.js'
import type { ApiKeyRow } from './repository.js'

export const ApiKeySchema = Type.Object({
  id: Uuid,
  name: Type.String(),
  role: RoleSchema,
  prefix: Type.String({ description: 'first characters of the key, to tell keys apart' }),
  createdAt: Timestamp,
  revokedAt: NullableTimestamp
})
export const CreatedApiKey = Type.Object({
  id: Uuid,
  name: Type.String(),
  role: RoleSchema,
  key: Type.String({ description: 'the secret; shown only in this response' }),
  prefix: Type.String(),
  createdAt: Timestamp
})
export const CreateApiKeyBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }), role: RoleSchema },
  { additionalProperties: false }
)

export const presentKey = (row: ApiKeyRow) => ({
  id: row.id,
  name: row.name,
  role: row.role,
  prefix: row.keyPrefix,
  createdAt: row.createdAt.toISOString(),
  revokedAt: iso(row.revokedAt)
})
