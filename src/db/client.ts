import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import * as schema from './schema/index.js'

export type Database = NodePgDatabase<typeof schema>
/** A transaction handle, accepted by every repository function in place of the database. */
export type Executor = Database | Parameters<Parameters<Database['transaction']>[0]>[0]

export interface DbHandle {
  pool: pg.Pool
  db: Database
}

export function createDb(url: string, options: { max?: number; applicationName?: string } = {}): DbHandle {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: 2000,
    idleTimeoutMillis: 30_000,
    // A statement that cannot finish in 10s is a fault to report, not a wait to sit through.
    statement_timeout: 10_000,
    application_name: options.applicationName ?? 'autopilot'
  })
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {})
  // Nor one checked out (a transaction between two statements, waiting on something else): the pool
  // listens only to idle clients, and pg emits the loss on the client. Its next statement fails, the
  // transaction rolls back with that error, and the pool drops the client when it comes back.
  pool.on('connect', (client) => client.on('error', () => {}))
  return { pool, db: drizzle({ client: pool, schema }) }
}
