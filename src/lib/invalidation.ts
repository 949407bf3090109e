import { setTimeout as sleep } from 'node:timers/promises'
import type { RedisClient } from '../redis/client.js'
import type { LRUCache } from 'lru-cache'
import { keys } from '../redis/keys.js'

/** How often each process proves that its subscription still delivers messages. */
const PING_INTERVAL_MS = 250
/**
 * A process trusts its in-process caches only while a PING sent on its subscriber connection at most this
 * long ago has been answered. Redis answers a PING after every message published before it, so such a
 * process has already applied every invalidation published more than FRESHNESS_MS ago.
 */
export const FRESHNESS_MS = 1000

/**
 * In-process caches that every process must drop together: a change publishes `{cache, key}` on one Redis
 * channel and each process deletes the entry. A process that was disconnected may have missed messages,
 * so it clears all its caches when its subscriber connection closes and again on every (re)subscription;
 * entries also carry a short TTL as a backstop.
 *
 * Caches whose staleness is a security matter (API keys) also check `isFresh()` before trusting an entry,
 * and their invalidation (`invalidateEverywhere`) waits before it answers: by then every process has either applied
 * it or stopped trusting its cache, whether it got the message or its connection silently died.
 *
 * The argument needs the PUBLISH and every subscriber on one Redis server, which is what a standalone
 * connection (all this service opens) gives. On a Redis Cluster a message crosses the cluster bus
 * asynchronously, so a PONG from the subscriber's node no longer proves delivery; moving the state role
 * to a cluster needs sharded pub/sub (SSUBSCRIBE on the key's slot) or no in-process API-key cache.
 */
export function createInvalidationBus(redis: RedisClient, subscriber: RedisClient, onError: (err: unknown) => void) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const caches = new Map<string, LRUCache<string, any>>()
  /** Connection generation of the subscriber; `subscribed` is the generation whose SUBSCRIBE succeeded. */
  let generation = 0
  let subscribed = -1
  /** performance.now() at which the newest answered PING (of the current generation) was sent. */
  let freshAsOf = Number.NEGATIVE_INFINITY
  /** Bumped by every invalidation and every clear: a lookup that started before it must not fill a cache. */
  let changes = 0

  const reset = () => {
    generation++
    freshAsOf = Number.NEGATIVE_INFINITY
    changes++
    caches.forEach((cache) => cache.clear())
  }
  // A refused SUBSCRIBE (timeout, ACL) is retried on the same connection: until it succeeds this process
  // receives no invalidations, so it neither trusts its API-key cache nor stops asking Redis.
  const subscribe = () => {
    const current = generation
    subscriber
      .subscribe(keys.invalidationChannel)
      .then(() => {
        if (current === generation) subscribed = current
      })
      .catch((err: unknown) => {
        onError(err)
        const retry = () => {
          if (current === generation) subscribe()
        }
        if (current === generation) setTimeout(retry, PING_INTERVAL_MS).unref()
      })
  }

  subscriber.on('message', (_channel: string, message: string) => {
    changes++
    try {
      const { cache, key } = JSON.parse(message) as { cache: string; key: string }
      caches.get(cache)?.delete(key)
    } catch (err) {
      onError(err)
    }
  })
  subscriber.on('close', reset)
  subscriber.on('ready', () => {
    reset()
    subscribe()
  })
  if (subscriber.status === 'ready') subscribe()

  const publish = async (name: string, key: string) => {
    changes++
    caches.get(name)?.delete(key)
    await redis.publish(keys.invalidationChannel, JSON.stringify({ cache: name, key }))
  }

  let pinging = false
  const pinger = setInterval(() => {
    if (pinging || subscribed !== generation) return
    const current = generation
    const sent = performance.now()
    pinging = true
    subscriber
      .ping()
      .then(() => {
        if (current === generation) freshAsOf = Math.max(freshAsOf, sent)
      })
      .catch(() => undefined) // a missed answer is what isFresh() measures
      .finally(() => {
        pinging = false
      })
  }, PING_INTERVAL_MS)
  pinger.unref()

  return {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    register<C extends LRUCache<string, any>>(name: string, cache: C): C {
      caches.set(name, cache)
      return cache
    },
    /** Drops the entry here at once and tells the other processes; a Redis failure is reported, not thrown. */
    async invalidate(name: string, key: string): Promise<void> {
      await publish(name, key).catch(onError)
    },
    /**
     * Drops the entry in every process and resolves only once no process can still serve it from its
     * cache (FRESHNESS_MS later, plus timer slack). Throws when Redis refuses the message.
     */
    async invalidateEverywhere(name: string, key: string): Promise<void> {
      await publish(name, key)
      await sleep(FRESHNESS_MS + 20)
    },
    /** Whether this process has provably seen every invalidation published more than FRESHNESS_MS ago. */
    isFresh: () => subscribed === generation && performance.now() - freshAsOf <= FRESHNESS_MS,
    /** A stamp to take before a lookup; pass it to `unchanged` before caching what the lookup found. */
    stamp: () => changes,
    unchanged: (stamp: number) => stamp === changes,
    close: () => clearInterval(pinger)
  }
}
export type InvalidationBus = ReturnType<typeof createInvalidationBus>

/**
 * A cached value at once (no promise on the hot path), or `fetchFresh` when it is missing or stale.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export function cachedOrFetch<V extends {}>(cache: LRUCache<string, V, unknown>, key: string, fallback: V): V | Promise<V> {
  return cache.get(key) ?? fetchFresh(cache, key).then((value) => value ?? fallback)
}

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
