import { setTimeout as sleep } from 'node:timers/promises'
import { LRUCache } from 'lru-cache'
import { describe, expect, it } from 'vitest'
import { fetchFresh } from '../src/lib/invalidation.js'

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
