import { eq } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { isUniqueViolation } from '../../db/errors.js'
import { keysetPage, type PageRequest } from '../../db/keyset.js'
import { users } from '../../db/schema/index.js'
import { AlreadyExistsError } from '../../lib/domain-errors.js'

export type UserRow = typeof users.$inferSelect

export async function insertUser(exec: Executor, values: typeof users.$inferInsert): Promise<UserRow> {
  try {
    const [row] = await exec.insert(users).values(values).returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err, 'users_email_unique')) throw new AlreadyExistsError('user', 'email')
    throw err
  }
}

export function listUsers(exec: Executor, organizationId: string, page: PageRequest) {
  return keysetPage(exec.select().from(users).$dynamic(), users.id, [eq(users.organizationId, organizationId)], page)
}

/** The public shape of a user: never the password hash. */
export const presentUser = (row: UserRow) => ({
  id: row.id,
  email: row.email,
  role: row.role,
  createdAt: row.createdAt.toISOString()
})
