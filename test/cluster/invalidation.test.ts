import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { sha256 } from '../../src/lib/crypto.js'
import { FRESHNESS_MS, SHARD_CHANNEL } from '../../src/lib/invalidation.js'
import { REVOKED } from '../../src/modules/api-keys/credentials.js'
import { keys } from '../../src/redis/keys.js'
import { apiKey, call, expectProblem, signup, type Org } from '../helpers.js'
import { startRedisCluster } from '../servers.js'
import { appOn, failedOver, masterOf, replicated, type TestCluster } from './shard-helpers.js'

/*
 * Issue 14: the invalidation bus on a Redis Cluster. A revoked API key must fail on the very next request
 * in every process, which needs the message and the PING that proves its delivery on one server: SPUBLISH
 * and SSUBSCRIBE at the master owning the shard channel's slot, followed through a failover.
 */
describe('invalidation bus on a Redis Cluster (two API instances)', () => {
  let cluster: TestCluster
  let a: FastifyInstance
  let b: FastifyInstance
  beforeAll(async () => {
    cluster = await startRedisCluster()
    await replicated(cluster)
    a = await appOn(cluster)
    b = await appOn(cluster)
  }, 60_000)
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()])
    await cluster?.stop()
  })

  const list = (app: FastifyInstance, key: string) => call(app, key, { method: 'GET', url: '/v1/services' })
  const revoke = (app: FastifyInstance, org: Org, id: string) => call(app, org.token, { method: 'DELETE', url: `/v1/api-keys/${id}` })

  /** How many connections are subscribed to the shard channel at the master on `port`. */
  async function shardSubscribers(port: number): Promise<number> {
    const client = new Redis({ port, host: '127.0.0.1' })
    try {
      const [, count] = (await client.call('PUBSUB', 'SHARDNUMSUB', SHARD_CHANNEL)) as [string, number]
      return count
    } finally {
      client.disconnect()
    }
  }

  /** b serves the key from memory: a tombstone written behind its back does not reach it. */
  async function servedFromMemory(key: string) {
    const cacheKey = keys.apiKeyAuth(sha256(key))
    expect((await list(b, key)).statusCode).toBe(200)
    await b.redis.set(cacheKey, REVOKED)
    try {
      expect((await list(b, key)).statusCode).toBe(200)
    } finally {
      await b.redis.del(cacheKey)
    }
  }

  it('an API key revoked through one instance fails on the very next request through the other, which had it cached', async () => {
    const channelMaster = await masterOf(cluster, SHARD_CHANNEL)
    await vi.waitFor(() => expect(a.invalidation.isFresh() && b.invalidation.isFresh()).toBe(true), { timeout: 5000 })
    // Both subscribe where SPUBLISH goes: at the master owning the channel's slot.
    expect(await shardSubscribers(channelMaster)).toBe(2)

    const org = await signup(a)
    const key = await apiKey(a, org)
    await servedFromMemory(key.key)

    const started = performance.now()
    expect((await revoke(a, org, key.id)).statusCode).toBe(204)
    expect(performance.now() - started).toBeGreaterThanOrEqual(FRESHNESS_MS)
    expect((await list(b, key.key)).statusCode).toBe(401)
  })

  it("a master handing the channel's slot to its replica while alive unsubscribes the instances, which follow the slot", async () => {
    const before = await masterOf(cluster, SHARD_CHANNEL)
    const admin = new Redis({ port: before, host: '127.0.0.1' })
    const [, , replicas] = (await admin.role()) as [string, number, [string, string, string][]]
    admin.disconnect()
    const replica = Number(replicas[0]![1])
    await vi.waitFor(() => expect(a.invalidation.isFresh() && b.invalidation.isFresh()).toBe(true), { timeout: 5000 })

    const promoted = new Redis({ port: replica, host: '127.0.0.1' })
    expect(await promoted.cluster('FAILOVER')).toBe('OK')
    promoted.disconnect()
    await vi.waitFor(async () => expect(await masterOf(cluster, SHARD_CHANNEL)).toBe(replica), { timeout: 10_000, interval: 100 })
    // The old master, now a replica, would still pass messages on (asynchronously): nobody listens there.
    await vi.waitFor(async () => expect([await shardSubscribers(replica), await shardSubscribers(before)]).toEqual([2, 0]), { timeout: 5000, interval: 50 })
    await vi.waitFor(() => expect(a.invalidation.isFresh() && b.invalidation.isFresh()).toBe(true), { timeout: 5000 })

    const org = await signup(a)
    const key = await apiKey(a, org)
    await servedFromMemory(key.key)
    expect((await revoke(a, org, key.id)).statusCode).toBe(204)
    expect((await list(b, key.key)).statusCode).toBe(401)
    await replicated(cluster) // the old master in sync as a replica, for the next test's failover
  }, 30_000)

  it("the channel's master killed: no instance trusts its cache until subscribed at the promoted replica; revocations meanwhile answer 503 and hold", async () => {
    const victim = await masterOf(cluster, SHARD_CHANNEL)
    const org = await signup(a)
    // A key whose Redis tombstone lives on another master: its revocation can write it, only SPUBLISH fails.
    let key = await apiKey(a, org)
    while ((await masterOf(cluster, keys.apiKeyAuth(sha256(key.key)))) === victim) key = await apiKey(a, org)
    const later = await apiKey(a, org)
    await vi.waitFor(() => expect(b.invalidation.isFresh()).toBe(true), { timeout: 5000 })
    await servedFromMemory(key.key)

    await cluster.kill(victim)
    // Its subscriber connection closed: caches cleared, not fresh.
    await vi.waitFor(() => expect(a.invalidation.isFresh() || b.invalidation.isFresh()).toBe(false), { timeout: 1000, interval: 20 })

    // The slot has no master: SPUBLISH fails, the revocation (committed in Postgres) asks to be repeated.
    expectProblem(await revoke(a, org, key.id), 503, 'unavailable')
    await a.redis.del(keys.apiKeyAuth(sha256(key.key)))
    expect(b.invalidation.isFresh()).toBe(false)
    // Neither memory nor Redis: Postgres, which knows the key is revoked.
    expect((await list(b, key.key)).statusCode).toBe(401)

    await failedOver(cluster, victim)
    const promoted = await masterOf(cluster, SHARD_CHANNEL)
    expect(promoted).not.toBe(victim)
    // Subscribed again, at the new master, and proven there by an answered PING: trusted again.
    await vi.waitFor(() => expect(a.invalidation.isFresh() && b.invalidation.isFresh()).toBe(true), { timeout: 5000, interval: 50 })
    expect(await shardSubscribers(promoted)).toBe(2)
    expect((await list(b, key.key)).statusCode).toBe(401)
    expect((await revoke(a, org, key.id)).statusCode).toBe(204) // what the 503 asked for

    // The bus works at the new master: b trusts its cache, and a revocation reaches it at once.
    await servedFromMemory(later.key)
    expect((await revoke(a, org, later.id)).statusCode).toBe(204)
    expect((await list(b, later.key)).statusCode).toBe(401)
  }, 60_000)
})
