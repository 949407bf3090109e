import fp from 'fastify-plugin'
import { createQueue, type QueueName, type TypedQueue } from '../redis/queues.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Producers on the queue Redis; they fail fast while it is down (its connection has no offline queue). */
    queues: { [N in QueueName]: TypedQueue<N> }
  }
}

export default fp(
  async (app, opts: { prefix: string }) => {
    const queues = {
      actions: createQueue('actions', app.queueRedis, opts.prefix, true),
      timers: createQueue('timers', app.queueRedis, opts.prefix, true),
      maintenance: createQueue('maintenance', app.queueRedis, opts.prefix, true)
    } satisfies { [N in QueueName]: TypedQueue<N> }
    for (const queue of Object.values(queues)) queue.on('error', () => {})
    app.decorate('queues', queues)
    app.addHook('onClose', async () => {
      await Promise.all(Object.values(queues).map((queue) => queue.close()))
    })
  },
  { name: 'queues', dependencies: ['redis'] }
)
