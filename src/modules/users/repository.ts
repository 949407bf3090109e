import { and, desc, eq, lt, type SQL } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { users } from '../../db/schema/index.js'
import { isUniqueViolation } from '../../db/errors.js'
import { errors } from '../../errors.js'

export type UserRow = typeof users.$inferSelect

export async function insertUser(exec: Executor, values: typeof users.$inferInsert): Promise<UserRow> {
  try {
    const [row] = await exec.insert(users).values(values).returning()
    return row!
  } catch (err) {
    if (isUniqueViolation(err, 'users_email_unique')) throw errors.conflict('a user with this email already exists')
    throw err
  }
}

export function listUsers(exec: Executor, organizationId: string, limit: number, after?: string) {
  const where: SQL[] = [eq(users.organizationId, organizationId)]
  if (after) where.push(lt(users.id, after))
  return exec
    .select()
    .from(users)
    .where(and(...where))
    .orderBy(desc(users.id))
    .limit(limit)
}

/** The public shape of a user: never the password hash. */
export const presentUser = (row: UserRow) => ({
  id: row.id,
  email: row.email,
  role: row.role,
  createdAt: row.createdAt.toISOString()
})
