import { sql } from 'drizzle-orm'
import { afterAll, describe, expect, it } from 'vitest'
import { createDb } from '../../src/db/client.js'

const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/autopilot_test'
const { db, pool } = createDb(url, { max: 2 })
afterAll(() => pool.end())

describe('database pool', () => {
  it('a connection that drops inside a transaction, between two statements, fails that transaction and nothing else', async () => {
    const transaction = db.transaction(async (tx) => {
      const [{ pid }] = (await tx.execute(sql`SELECT pg_backend_pid() AS pid`)).rows as [{ pid: number }]
      // Another connection ends this one while the transaction waits on something else (a Redis call…).
      await pool.query('SELECT pg_terminate_backend($1)', [pid])
      await new Promise((resolve) => setTimeout(resolve, 200))
      await tx.execute(sql`SELECT 1`)
    })
    await expect(transaction).rejects.toThrow()
    // The pool replaced the lost connection.
    expect((await db.execute(sql`SELECT 1 AS one`)).rows).toEqual([{ one: 1 }])
  })
})
