import { setTimeout as sleep } from 'node:timers/promises'
import { LRUCache } from 'lru-cache'
import { Redis } from 'ioredis'
import { describe, expect, it, vi } from 'vitest'
import { createInvalidationBus, fetchFresh } from '../../src/lib/invalidation.js'
import { createRedis } from '../../src/redis/client.js'
import { startRedis } from '../servers.js'

describe('fetchFresh', () => {
  it('an invalidation during a fetch makes it read again instead of failing the request', async () => {
    let version = 0
    const cache = new LRUCache<string, { version: number }>({
      max: 10,
      fetchMethod: async () => {
        const seen = ++version
        await sleep(50)
        return { version: seen }
      }
    })
    const pending = fetchFresh(cache, 'org')
    await sleep(10)
    cache.delete('org') // what a pub/sub invalidation does
    expect(await pending).toEqual({ version: 2 })
  })

  it('real failures still fail', async () => {
    const cache = new LRUCache<string, { v: number }>({
      max: 10,
      fetchMethod: async () => {
        throw new Error('connection refused')
      }
    })
    await expect(fetchFresh(cache, 'org')).rejects.toThrow('connection refused')
  })
})

describe('invalidation bus', () => {
  it('does not trust its caches until SUBSCRIBE succeeds, and retries a refused one', async () => {
    const server = await startRedis()
    const admin = new Redis(server.url)
    // A user who may not use pub/sub channels yet.
    await admin.call('ACL', 'SETUSER', 'app', 'on', 'nopass', '~*', 'resetchannels', '+@all')
    const url = server.url.replace('redis://', 'redis://app:any@')
    const state = createRedis(url, 'state', 500, { lazyConnect: false })
    const subscriber = createRedis(url, 'state', 500, { lazyConnect: false, enableOfflineQueue: true })
    const errors: unknown[] = []
    const bus = createInvalidationBus(state, subscriber, (err) => errors.push(err))
    try {
      await vi.waitFor(() => expect(errors.some((err) => String(err).includes('NOPERM'))).toBe(true))
      await sleep(600)
      expect(bus.isFresh()).toBe(false)

      await admin.call('ACL', 'SETUSER', 'app', 'allchannels')
      await vi.waitFor(() => expect(bus.isFresh()).toBe(true), { timeout: 3000 })
    } finally {
      bus.close()
      for (const client of [state, subscriber, admin]) client.disconnect()
      await server.stop()
    }
  })
})
