import type { Queue } from 'bullmq'
import fp from 'fastify-plugin'
import { createQueue, QUEUE_NAMES, type QueueName, type QueuePayloads } from '../jobs/queues.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Producers on the queue Redis; they fail fast while it is down (its connection has no offline queue). */
    queues: { [N in QueueName]: Queue<QueuePayloads[N], unknown, string> }
  }
}

export default fp(
  async (app, opts: { prefix: string }) => {
    const queues = Object.fromEntries(QUEUE_NAMES.map((name) => [name, createQueue(name, app.queueRedis, opts.prefix, true)]))
    for (const queue of Object.values(queues)) queue.on('error', () => {})
    app.decorate('queues', queues as FastifyInstanceQueues)
    app.addHook('onClose', async () => {
      await Promise.all(Object.values(queues).map((queue) => queue.close()))
    })
  },
  { name: 'queues', dependencies: ['redis'] }
)
type FastifyInstanceQueues = import('fastify').FastifyInstance['queues']
