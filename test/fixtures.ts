import type { FastifyInstance } from 'fastify'
import { incidents } from '../src/db/schema/index.js'
import type { Org } from './helpers.js'

/**
 * Incidents are opened by the detector and by alerts (their own endpoints); lifecycle tests that only
 * need an open incident insert one directly into the real database.
 */
export async function openIncident(app: FastifyInstance, org: Org, serviceId: string, overrides: Partial<typeof incidents.$inferInsert> = {}) {
  const [row] = await app.db
    .insert(incidents)
    .values({
      organizationId: org.organizationId,
      serviceId,
      title: 'latency above baseline',
      severity: 'warning',
      source: 'detector',
      metrics: ['latency_ms'],
      anomalyCount: 3,
      peakZScore: 4.2,
      ...overrides
    })
    .returning()
  return row!
}
