import { sql } from 'drizzle-orm'
import { check, index, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { at, createdAt, id, oneOf, ROLES } from './columns.js'
import { organizations } from './organizations.js'

export const users = pgTable(
  'users',
  {
    id: id(),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    email: text('email').notNull(),
    passwordHash: text('password_hash').notNull(),
    role: text('role', { enum: ROLES }).notNull(),
    createdAt: createdAt()
  },
  (t) => [
    uniqueIndex('users_email_unique').on(sql`lower(${t.email})`),
    index('users_organization_idx').on(t.organizationId, t.id),
    check('users_role_check', sql.raw(`${t.role.name} IN (${oneOf(ROLES)})`))
  ]
)

/** One row per login; the refresh token rotates inside it and only its current hash is kept. */
export const sessions = pgTable(
  'sessions',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    refreshTokenHash: text('refresh_token_hash').notNull(),
    /** the last few refresh tokens rotated away (hashes): presenting one of them is reuse of a stolen copy */
    retiredTokenHashes: text('retired_token_hashes').array().notNull().default(sql`'{}'::text[]`),
    createdAt: createdAt(),
    lastRotatedAt: at('last_rotated_at'),
    expiresAt: at('expires_at').notNull(),
    revokedAt: at('revoked_at'),
    revokedReason: text('revoked_reason')
  },
  (t) => [index('sessions_user_idx').on(t.userId), index('sessions_expires_idx').on(t.expiresAt)]
)

export const apiKeys = pgTable(
  'api_keys',
  {
    id: id(),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    role: text('role', { enum: ROLES }).notNull(),
    keyHash: text('key_hash').notNull().unique(),
    /** First characters of the key, so operators can tell keys apart without the secret. */
    keyPrefix: text('key_prefix').notNull(),
    createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
    revokedAt: at('revoked_at')
  },
  (t) => [
    index('api_keys_organization_idx').on(t.organizationId, t.id),
    check('api_keys_role_check', sql.raw(`${t.role.name} IN (${oneOf(ROLES)})`))
  ]
)
