import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { connectLeniently, createRedis } from '../redis/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** State role: caches, baselines, windows, rate limits; every key has a TTL. */
    redis: Redis
    /** Queue role: BullMQ and the audit dead-letter stream (noeviction + AOF in production). */
    queueRedis: Redis
  }
}

export default fp(
  async (app, opts: { redisUrl: string; queueRedisUrl: string; commandTimeoutMs: number }) => {
    const state = createRedis(opts.redisUrl, 'state', opts.commandTimeoutMs)
    const queue = createRedis(opts.queueRedisUrl, 'queue', opts.commandTimeoutMs)
    let lastLogged = 0
    const report = (role: string) => (err: Error) => {
      // A down Redis reports on every reconnect attempt; one line every 10s is enough.
      if (Date.now() - lastLogged > 10_000) {
        lastLogged = Date.now()
        app.log.warn({ err: err.message, role }, 'redis connection problem')
      }
    }
    await Promise.all([connectLeniently(state, report('state')), connectLeniently(queue, report('queue'))])
    app.decorate('redis', state)
    app.decorate('queueRedis', queue)
    app.addHook('onClose', async () => {
      await Promise.all([state.quit().catch(() => state.disconnect()), queue.quit().catch(() => queue.disconnect())])
    })
  },
  { name: 'redis' }
)
