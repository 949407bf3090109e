import type { Redis } from 'ioredis'
import type { LRUCache } from 'lru-cache'
import { keys } from '../redis/keys.js'

/**
 * In-process caches that every process must drop together: a change publishes `{cache, key}` on one Redis
 * channel and each process deletes the entry. A process that was disconnected may have missed messages,
 * so on every (re)subscription it clears all its caches; entries also carry a short TTL as a backstop.
 */
export function createInvalidationBus(redis: Redis, subscriber: Redis, onError: (err: unknown) => void) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const caches = new Map<string, LRUCache<string, any>>()
  const clearAll = () => caches.forEach((cache) => cache.clear())

  subscriber.on('message', (_channel: string, message: string) => {
    try {
      const { cache, key } = JSON.parse(message) as { cache: string; key: string }
      caches.get(cache)?.delete(key)
    } catch (err) {
      onError(err)
    }
  })
  subscriber.on('ready', () => {
    clearAll()
    subscriber.subscribe(keys.invalidationChannel).catch(onError)
  })
  if (subscriber.status === 'ready') subscriber.subscribe(keys.invalidationChannel).catch(onError)

  return {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    register<C extends LRUCache<string, any>>(name: string, cache: C): C {
      caches.set(name, cache)
      return cache
    },
    /** Drops the entry here at once and tells the other processes; a Redis failure is reported, not thrown. */
    async invalidate(name: string, key: string): Promise<void> {
      caches.get(name)?.delete(key)
      await redis.publish(keys.invalidationChannel, JSON.stringify({ cache: name, key })).catch(onError)
    }
  }
}
export type InvalidationBus = ReturnType<typeof createInvalidationBus>

/**
 * `cache.fetch` for caches with a fetchMethod: an invalidation that lands while a fetch is in flight
 * aborts it (lru-cache rejects with "deleted"), which only means "read it again".
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export async function fetchFresh<V extends {}>(cache: LRUCache<string, V, unknown>, key: string): Promise<V | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await cache.fetch(key)
    } catch (err) {
      const aborted = err instanceof Error && ['deleted', 'evicted', 'replaced'].includes(err.message)
      if (!aborted || attempt >= 3) throw err
    }
  }
}
