import fp from 'fastify-plugin'
import type { RedisClient } from '../redis/client.js'
import { createInvalidationBus, type InvalidationBus } from '../lib/invalidation.js'
import { throttled } from '../lib/throttle.js'
import { connectLeniently, createRedis, isCluster } from '../redis/client.js'
import { defineScripts } from '../redis/scripts.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** State role: caches, baselines, windows, rate limits; every key has a TTL. */
    redis: RedisClient
    /** Queue role: BullMQ and the audit dead-letter stream (noeviction + AOF in production). */
    queueRedis: RedisClient
    /** Drops in-process cache entries in every process (Redis pub/sub). */
    invalidation: InvalidationBus
  }
}

export default fp(
  async (app, opts: { redisUrl: string; queueRedisUrl: string; commandTimeoutMs: number }) => {
    const state = createRedis(opts.redisUrl, 'state', opts.commandTimeoutMs)
    const queue = createRedis(opts.queueRedisUrl, 'queue', opts.commandTimeoutMs)
    const warn = throttled((role: string, err: unknown) =>
      app.log.warn({ err: err instanceof Error ? err.message : String(err), role }, 'redis connection problem')
    )
    const report = (role: string) => (err: unknown) => warn(role, err)
    // Subscriber mode needs a connection of its own, which may queue its SUBSCRIBE until connected; on a
    // cluster the bus opens its own, to the master of its channel's slot.
    const subscriber = isCluster(state) ? undefined : createRedis(opts.redisUrl, 'state', opts.commandTimeoutMs, { lazyConnect: false, enableOfflineQueue: true })
    subscriber?.on('error', report('subscriber'))
    await Promise.all([connectLeniently(state, report('state')), connectLeniently(queue, report('queue'))])
    defineScripts(state)
    app.decorate<RedisClient>('redis', state)
    app.decorate<RedisClient>('queueRedis', queue)
    const invalidation = createInvalidationBus(state, subscriber, report('subscriber'))
    app.decorate('invalidation', invalidation)
    app.addHook('onClose', async () => {
      invalidation.close()
      await Promise.all(
        [state, queue, ...(subscriber ? [subscriber] : [])].map((client) => client.quit().catch(() => client.disconnect()))
      )
    })
  },
  { name: 'redis' }
)
