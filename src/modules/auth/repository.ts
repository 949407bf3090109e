import { and, eq, gt, isNull, sql } from 'drizzle-orm'
import type { Executor } from '../../db/client.js'
import { organizations, sessions, subscriptions, users } from '../../db/schema/index.js'

export function findUserByEmail(exec: Executor, email: string) {
  return exec
    .select()
    .from(users)
    .where(sql`lower(${users.email}) = lower(${email})`)
    .then((rows) => rows[0])
}

export async function insertOrganization(exec: Executor, values: typeof organizations.$inferInsert) {
  const [organization] = await exec.insert(organizations).values(values).returning()
  const [subscription] = await exec.insert(subscriptions).values({ organizationId: organization!.id }).returning()
  return { organization: organization!, subscription: subscription! }
}

export async function insertSession(exec: Executor, values: typeof sessions.$inferInsert) {
  const [row] = await exec.insert(sessions).values(values).returning()
  return row!
}

/** Swaps the current refresh token for a new one; matches only a live session holding `currentHash`. */
/** How many rotated-away refresh tokens a session remembers, to tell a replayed one from a made-up one. */
export const RETIRED_KEPT = 8

export async function rotateSession(exec: Executor, id: string, currentHash: string, nextHash: string, expiresAt: Date, now: Date) {
  const [row] = await exec
    .update(sessions)
    .set({
      refreshTokenHash: nextHash,
      // The token rotated away is remembered (the last RETIRED_KEPT of them): shown again, it is a stolen copy.
      retiredTokenHashes: sql`(array_prepend(${currentHash}::text, ${sessions.retiredTokenHashes}))[1:${sql.raw(String(RETIRED_KEPT))}]`,
      lastRotatedAt: now,
      expiresAt
    })
    .where(
      and(
        eq(sessions.id, id),
        eq(sessions.refreshTokenHash, currentHash),
        isNull(sessions.revokedAt),
        gt(sessions.expiresAt, now)
      )
    )
    .returning()
  return row
}

export function findSession(exec: Executor, id: string) {
  return exec
    .select()
    .from(sessions)
    .where(eq(sessions.id, id))
    .then((rows) => rows[0])
}

/** Whether the session exists and is not revoked: what its access tokens are worth until they expire. */
export function isSessionLive(exec: Executor, id: string) {
  return exec
    .select({ id: sessions.id })
    .from(sessions)
    .where(and(eq(sessions.id, id), isNull(sessions.revokedAt)))
    .then((rows) => rows.length > 0)
}

export async function revokeSession(exec: Executor, id: string, reason: string, now: Date) {
  const [row] = await exec
    .update(sessions)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(eq(sessions.id, id), isNull(sessions.revokedAt)))
    .returning()
  return row
}

export function findUser(exec: Executor, organizationId: string, id: string) {
  return exec
    .select()
    .from(users)
    .where(and(eq(users.organizationId, organizationId), eq(users.id, id)))
    .then((rows) => rows[0])
}

export function findOrganization(exec: Executor, id: string) {
  return exec
    .select({ id: organizations.id, name: organizations.name, plan: subscriptions.plan })
    .from(organizations)
    .innerJoin(subscriptions, eq(subscriptions.organizationId, organizations.id))
    .where(eq(organizations.id, id))
    .then((rows) => rows[0])
}
