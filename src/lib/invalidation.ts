import { setTimeout as sleep } from 'node:timers/promises'
import { Redis, type Cluster } from 'ioredis'
import { isCluster, type RedisClient } from '../redis/client.js'
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
/** On a cluster: the sharded channel, hash-tagged so its slot is that of `keys.invalidationChannel`'s name alone. */
export const SHARD_CHANNEL = `{${keys.invalidationChannel}}`
/** On a cluster, the longest wait between two attempts to subscribe at the channel's current master. */
const MAX_RETARGET_MS = 2000

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
 * The argument needs the PUBLISH and every subscriber on one Redis server. A standalone server gives that;
 * so does Sentinel, whose subscriber connection follows the master (a failover closes it: reset).
 *
 * On a Redis Cluster a classic PUBLISH crosses the cluster bus asynchronously, so a PONG from the
 * subscriber's node would prove nothing. The bus uses sharded pub/sub instead: SPUBLISH on SHARD_CHANNEL,
 * which the cluster client sends to the master owning the channel's slot, and SSUBSCRIBE on a standalone
 * connection of its own to that same master (found in the client's slot map after a refresh), where it
 * also PINGs. The argument then holds per master, and the bus keeps its subscriber on the current one:
 * - ROLE goes in the same write as SSUBSCRIBE (Redis runs both before it handles any cluster message), and
 *   the subscription counts only if ROLE answered master: a replica also accepts SSUBSCRIBE and gets the
 *   messages, but asynchronously, so its PONG proves nothing. A master that does not own the slot answers
 *   MOVED. Either way the bus drops the connection and looks again.
 * - A master losing the slot (manual failover, or a partitioned old master rejoining as a replica)
 *   unsubscribes its shard subscribers (a server-sent `sunsubscribe`), and a killed master closes the
 *   connection; an unanswered PING (a silently dead path) drops it too. Each resets: caches cleared, not
 *   fresh, until the bus has subscribed at the master the refreshed slot map names and a PING sent there
 *   is answered.
 * - During a failover SPUBLISH fails (the slot has no reachable master), so `invalidateEverywhere` throws
 *   and the revocation answers 503 (committed in Postgres, to be repeated); processes that were subscribed
 *   at the dead master are not fresh meanwhile and ask Redis/Postgres. Once an SPUBLISH succeeds at the new
 *   master M, every fresh process is subscribed at M, which delivers it before its next PONG. The old master
 *   coming back rejoins as a replica of M: ROLE keeps the bus from subscribing there, whatever a stale slot
 *   map says.
 * Not covered (as with Sentinel): a partitioned old master that still takes SPUBLISHes for the few seconds
 * before the cluster fails it over, with subscribers on both sides.
 *
 * `subscriber`: a connection of its own to the same server as `redis` (standalone or Sentinel), which the
 * bus puts in subscriber mode. None on a cluster: the bus opens (and re-opens) its own to the channel's master.
 */
export function createInvalidationBus(redis: RedisClient, subscriber: RedisClient | undefined, onError: (err: unknown) => void) {
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
  const apply = (message: string) => {
    changes++
    try {
      const { cache, key } = JSON.parse(message) as { cache: string; key: string }
      caches.get(cache)?.delete(key)
    } catch (err) {
      onError(err)
    }
  }

  let pingOn: () => RedisClient | undefined
  let send: (message: string) => Promise<unknown>
  /** On a cluster: the subscriber connection failed a PING, so it may be dead without having closed. */
  let pingFailed = (_current: number) => {}
  let stop = () => {}
  if (isCluster(redis)) {
    if (subscriber) throw new Error('on a cluster the invalidation bus opens its own subscriber connection')
    const shard = followShardMaster(redis)
    pingOn = () => shard.connection
    send = (message) => redis.spublish(SHARD_CHANNEL, message)
    pingFailed = (current) => {
      if (current === generation) shard.drop()
    }
    stop = shard.stop
  } else {
    if (!subscriber) throw new Error('the invalidation bus needs a subscriber connection')
    pingOn = () => subscriber
    send = (message) => redis.publish(keys.invalidationChannel, message)
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

    subscriber.on('message', (_channel: string, message: string) => apply(message))
    subscriber.on('close', reset)
    subscriber.on('ready', () => {
      reset()
      subscribe()
    })
    if (subscriber.status === 'ready') subscribe()
  }

  /**
   * The subscriber of a cluster: a standalone connection to the master that owns SHARD_CHANNEL's slot,
   * replaced (after a reset) whenever it closes, is told the slot moved, or turns out not to be that master.
   */
  function followShardMaster(cluster: Cluster) {
    let connection: Redis | undefined
    let slot: number | undefined
    let timer: NodeJS.Timeout | undefined
    let failures = 0
    let stopped = false

    const retarget = () => {
      if (stopped || timer) return
      timer = setTimeout(() => {
        timer = undefined
        connectToOwner().catch((err: unknown) => {
          onError(err)
          drop()
        })
      }, failures++ === 0 ? 0 : Math.min(PING_INTERVAL_MS * 2 ** (failures - 2), MAX_RETARGET_MS))
      timer.unref()
    }
    /** Not fresh (caches cleared) until subscribed again at the slot's current master. */
    const drop = () => {
      const dropped = connection
      connection = undefined
      if (dropped) {
        dropped.removeAllListeners()
        dropped.on('error', () => {})
        dropped.disconnect()
      }
      reset()
      retarget()
    }

    async function connectToOwner() {
      slot ??= await cluster.cluster('KEYSLOT', SHARD_CHANNEL)
      // After a failover the client's map may still name the dead master: ask the cluster first.
      await new Promise<void>((resolve) => cluster.refreshSlotsCache(() => resolve()))
      const owner = cluster.slots[slot]?.[0]
      if (stopped || connection) return
      if (!owner) throw new Error(`no master known for slot ${slot} of ${SHARD_CHANNEL}`)
      const colon = owner.lastIndexOf(':')
      const conn = new Redis({
        ...cluster.options.redisOptions,
        host: owner.slice(0, colon),
        port: Number(owner.slice(colon + 1)),
        lazyConnect: false,
        enableOfflineQueue: true,
        autoResubscribe: false,
        // Never reconnected: the next connection goes wherever the slot is then.
        retryStrategy: () => null
      })
      connection = conn
      const ours = () => connection === conn
      conn.on('error', onError)
      conn.on('smessage', (_channel: string, message: string) => apply(message))
      // Unsubscribed by the server (the slot moved), or MOVED in answer to SSUBSCRIBE.
      conn.on('moved', () => ours() && drop())
      conn.on('close', () => ours() && drop())
      conn.on('ready', () => {
        reset()
        const current = generation
        // One write: Redis runs both before it handles any cluster message (a demotion in between).
        conn
          .pipeline()
          .role()
          .ssubscribe(SHARD_CHANNEL)
          .exec()
          .then((replies) => {
            const failed = replies?.find(([err]) => err)?.[0]
            if (!replies || failed) throw failed ?? new Error('SSUBSCRIBE was not answered')
            if (!ours() || current !== generation) return
            const role = replies[0]![1] as [string, ...unknown[]]
            if (role[0] !== 'master') {
              onError(new Error(`${owner} is no longer a master: subscribing at the slot's current master`))
              drop()
              return
            }
            failures = 0
            // Messages published before the subscription took effect were missed: drop what was cached meanwhile.
            changes++
            caches.forEach((cache) => cache.clear())
            subscribed = current
          })
          .catch((err: unknown) => {
            onError(err)
            if (ours() && current === generation) drop()
          })
      })
    }

    retarget()
    return {
      get connection() {
        return connection
      },
      drop,
      stop() {
        stopped = true
        clearTimeout(timer)
        connection?.removeAllListeners()
        connection?.on('error', () => {})
        connection?.disconnect()
        connection = undefined
      }
    }
  }

  const publish = async (name: string, key: string) => {
    changes++
    caches.get(name)?.delete(key)
    await send(JSON.stringify({ cache: name, key }))
  }

  let pinging = false
  const pinger = setInterval(() => {
    const connection = pingOn()
    if (pinging || subscribed !== generation || !connection) return
    const current = generation
    const sent = performance.now()
    pinging = true
    connection
      .ping()
      .then(() => {
        if (current === generation) freshAsOf = Math.max(freshAsOf, sent)
      })
      .catch(() => pingFailed(current)) // a missed answer is what isFresh() measures
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
    /** Stops pinging; on a cluster also closes the bus's own subscriber connection. */
    close: () => {
      clearInterval(pinger)
      stop()
    }
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
