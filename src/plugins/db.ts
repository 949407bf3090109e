import fp from 'fastify-plugin'
import type { Pool } from 'pg'
import { createDb, type Database } from '../db/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Database
    pg: Pool
  }
}

export default fp(
  async (app, opts: { databaseUrl: string }) => {
    const { pool, db } = createDb(opts.databaseUrl, { applicationName: 'autopilot-api' })
    app.decorate('db', db)
    app.decorate('pg', pool)
    app.addHook('onClose', async () => {
      await pool.end()
    })
  },
  { name: 'db' }
)
