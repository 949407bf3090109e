import { and, desc, lt, type SQL } from 'drizzle-orm'
import type { PgColumn, PgSelect } from 'drizzle-orm/pg-core'

/** One page of a newest-first list: `after` is the last id of the previous page (UUIDv7 ids sort by creation). */
export interface PageRequest {
  after?: string
  /** the page size; one more row is fetched to tell whether another page exists (see `toPage`) */
  limit: number
}

/**
 * Keyset pagination over a time-ordered id, for any select built with `.$dynamic()`: the filters, rows
 * older than the cursor, newest first, page size + 1 rows.
 */
export function keysetPage<T extends PgSelect>(query: T, id: PgColumn, filters: (SQL | undefined)[], page: PageRequest) {
  return query
    .where(and(...filters, page.after ? lt(id, page.after) : undefined))
    .orderBy(desc(id))
    .limit(page.limit + 1)
}
