import fp from 'fastify-plugin'
import { createQueues, type Queues } from '../redis/queues.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Producers on the queue Redis; they fail fast while it is down (its connection has no offline queue). */
    queues: Queues
  }
}

export default fp(
  async (app, opts: { prefix: string }) => {
    const queues = createQueues(app.queueRedis, opts.prefix, true)
    for (const queue of Object.values(queues)) queue.on('error', () => {})
    app.decorate('queues', queues)
    app.addHook('onClose', async () => {
      await Promise.all(Object.values(queues).map((queue) => queue.close()))
    })
  },
  { name: 'queues', dependencies: ['redis'] }
)
