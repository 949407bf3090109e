import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import { isCluster, type RedisClient } from './client.js'
import { systemClock, type Clock } from '../lib/clock.js'

interface Window {
  index: number
  length: number
  /** the cluster-wide count as of the last flush (this process's flushed hits included) */
  global: number
  /** hits taken here since the last flush */
  pending: number
  /** hits sent by the flush in flight */
  inflight: number
}

type Callback = (err: Error | null, result?: { current: number; ttl: number }) => void

/**
 * A @fastify/rate-limit store that counts in process and syncs with Redis every `flushMs`: fixed windows
 * aligned to the epoch (so every process agrees on them), `INCRBY` of the hits taken since the last sync,
 * and the returned total becomes this process's view of everybody's hits. A request costs no Redis round
 * trip; other processes' hits are seen within one flush interval. While Redis is down the limit keeps
 * being enforced per process.
 */
export function createBatchedRedisStore(redis: RedisClient, prefix: string, flushMs: number, onError: (err: unknown) => void, clock: Clock = systemClock) {
  const windows = new Map<string, Window>()
  let flushing = false

  /**
   * One flush's counters: `INCRBY` then `PEXPIRE` of each, and the totals (undefined where the write
   * failed, so those hits are sent again next time). A server takes them in one pipeline. A Redis Cluster
   * refuses a pipeline whose keys live on several masters, and the counters are spread over every slot
   * (keyed by credential, no shared hash tag, so no shard is hot): there each counter is its own MULTI,
   * all written at once, so a flush is still one round trip per master, made in parallel, and a counter
   * never exists without its expiry.
   */
  async function send(counters: { key: string; sent: number; ttl: number }[]): Promise<(number | undefined)[]> {
    const failed = (err: unknown) => {
      onError(err)
      return null
    }
    if (!isCluster(redis)) {
      const pipeline = redis.pipeline()
      for (const { key, sent, ttl } of counters) pipeline.incrby(key, sent).pexpire(key, ttl)
      const replies = await pipeline.exec().catch(failed)
      return counters.map((_, i) => {
        const [err, total] = replies?.[i * 2] ?? [new Error('no reply'), null]
        return err ? undefined : Number(total)
      })
    }
    let reported = false
    return Promise.all(
      counters.map(async ({ key, sent, ttl }) => {
        const replies = await redis
          .multi()
          .incrby(key, sent)
          .pexpire(key, ttl)
          .exec()
          .catch((err: unknown) => {
            // One report per flush: a master that is down fails every counter it holds.
            if (!reported) failed(err)
            reported = true
            return null
          })
        const [err, total] = replies?.[0] ?? [new Error('no reply'), null]
        return err ? undefined : Number(total)
      })
    )
  }

  async function flush() {
    if (flushing) return
    flushing = true
    try {
      const now = clock.now().getTime()
      const batch: [string, Window, number][] = []
      for (const [key, window] of windows) {
        if (window.pending === 0) {
          // Nothing to send: forget windows that are over.
          if (window.inflight === 0 && (window.index + 1) * window.length <= now) windows.delete(key)
          continue
        }
        batch.push([key, window, window.pending])
        window.inflight = window.pending
        window.pending = 0
      }
      if (batch.length === 0) return
      const totals = await send(batch.map(([key, window, sent]) => ({ key: `${prefix}${key}:${window.index}`, sent, ttl: window.length })))
      batch.forEach(([, window, sent], i) => {
        const total = totals[i]
        if (total === undefined) {
          window.pending += sent
        } else {
          window.global = total
        }
        window.inflight = 0
      })
    } finally {
      flushing = false
    }
  }

  const timer = setInterval(() => void flush(), flushMs)
  timer.unref()

  class BatchedRedisStore implements FastifyRateLimitStore {
    incr(key: string, cb: Callback, timeWindow: number) {
      const now = clock.now().getTime()
      const index = Math.floor(now / timeWindow)
      let window = windows.get(key)
      const fresh = window?.index !== index
      if (!window || fresh) {
        window = { index, length: timeWindow, global: 0, pending: 0, inflight: 0 }
        windows.set(key, window)
      }
      window.pending++
      // A key new to this process learns the others' count at once rather than at the next tick.
      if (fresh) setImmediate(() => void flush())
      cb(null, { current: window.global + window.inflight + window.pending, ttl: (index + 1) * timeWindow - now })
    }

    child() {
      return this
    }
  }

  return {
    Store: BatchedRedisStore,
    async close() {
      clearInterval(timer)
      await flush()
    }
  }
}
