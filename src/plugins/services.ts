import fp from 'fastify-plugin'
import { createServices, type Services } from '../composition.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Every feature service, from the composition root (`src/composition.ts`). */
    services: Services
  }
}

/** The feature services of the API process: routes call these and stay HTTP only. */
export default fp(
  async (app) => {
    const services = createServices({
      config: app.config,
      db: app.db,
      redis: app.redis,
      invalidation: app.invalidation,
      actionsQueue: app.queues.actions,
      clock: app.clock,
      log: app.log
    })
    app.decorate('services', services)
    app.addHook('onClose', services.ingest.close)
    app.addHook('onClose', services.eventStreams.close)
  },
  { name: 'services', dependencies: ['db', 'redis', 'queues'] }
)
