import { sql } from 'drizzle-orm'
import type { Database } from '../db/client.js'

/** Sessions are kept this long after they expire or are revoked (refresh-token reuse forensics). */
const SESSION_RETENTION_DAYS = 7
const BATCH = 5000

/**
 * Deletes expired idempotency keys and long-dead sessions, in bounded batches so one run never holds
 * long locks. Returns how many rows went.
 */
export async function purgeExpired(db: Database, now = new Date()) {
  const sessionCutoff = new Date(now.getTime() - SESSION_RETENTION_DAYS * 86_400_000)
  let sessions = 0
  let idempotencyKeys = 0
  for (;;) {
    const deleted = await db.execute(sql`
      DELETE FROM sessions WHERE id IN (
        SELECT id FROM sessions
        WHERE expires_at < ${sessionCutoff} OR revoked_at < ${sessionCutoff}
        LIMIT ${BATCH})`)
    sessions += deleted.rowCount ?? 0
    if ((deleted.rowCount ?? 0) < BATCH) break
  }
  for (;;) {
    const deleted = await db.execute(sql`
      DELETE FROM idempotency_keys WHERE (organization_id, key) IN (
        SELECT organization_id, key FROM idempotency_keys WHERE expires_at < ${now} LIMIT ${BATCH})`)
    idempotencyKeys += deleted.rowCount ?? 0
    if ((deleted.rowCount ?? 0) < BATCH) break
  }
  return { sessions, idempotencyKeys }
}
