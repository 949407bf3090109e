import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { buildApp } from '../../src/app.js'
import { FRESHNESS_MS } from '../../src/lib/invalidation.js'
import { sha256 } from '../../src/lib/crypto.js'
import { REVOKED } from '../../src/modules/api-keys/credentials.js'
import { keys } from '../../src/redis/keys.js'
import { apiKey, call, expectProblem, signup, testConfig, useApp } from '../helpers.js'
import { startTcpProxy } from '../servers.js'

// Two API instances sharing Postgres and Redis, as two processes behind a load balancer would.
const a = useApp()
const b = useApp()

describe('in-process caches across API processes', () => {
  it('an API key revoked through one process fails on the next request to the other, which had it in memory', async () => {
    const org = await signup(a.app)
    const key = await apiKey(a.app, org)
    const list = (app: FastifyInstance) => call(app, key.key, { method: 'GET', url: '/v1/services' })
    await vi.waitFor(() => expect(b.app.invalidation.isFresh()).toBe(true))
    expect((await list(b.app)).statusCode).toBe(200)

    // b answers from its in-process cache now: a tombstone written behind its back does not reach it.
    const cacheKey = keys.apiKeyAuth(sha256(key.key))
    await b.app.redis.set(cacheKey, REVOKED)
    expect((await list(b.app)).statusCode).toBe(200)
    await b.app.redis.del(cacheKey)

    const started = performance.now()
    expect((await call(a.app, org.token, { method: 'DELETE', url: `/v1/api-keys/${key.id}` })).statusCode).toBe(204)
    // The revocation answers only once no process can still serve the key from memory.
    expect(performance.now() - started).toBeGreaterThanOrEqual(FRESHNESS_MS)
    expect((await list(b.app)).statusCode).toBe(401)
  })

  it('a service changed through one process is seen at once by the other (pub/sub invalidation)', async () => {
    const org = await signup(a.app)
    const key = (await apiKey(a.app, org)).key
    const created = await call(a.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'shared', detection: { minSamples: 5, minSpanSeconds: 0 } } })
    const send = (value: number) => call(b.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: [{ service: 'shared', metric: 'lat', value }] } })
    for (let i = 0; i < 10; i++) await send(100 + (i % 3))
    expect((await send(101)).json().learning).toBe(0) // b has the service (minSamples 5) in its LRU

    await call(a.app, org.token, { method: 'PATCH', url: `/v1/services/${created.json().id}`, payload: { detection: { minSamples: 50 } } })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await send(101)).json().learning).toBe(1) // b now scores with the new minSamples
    // The Redis entry stays a short-lived tombstone: lookups fill it only when absent, so a lookup that
    // read the old row just before the change could not have put it back.
    expect(await a.app.redis.get(keys.serviceByName(org.organizationId, 'shared'))).toBe('-')

    await call(a.app, org.token, { method: 'DELETE', url: `/v1/services/${created.json().id}` })
    await new Promise((resolve) => setTimeout(resolve, 100))
    await send(100)
    const services = (await call(a.app, org.token, { method: 'GET', url: '/v1/services' })).json().items
    // b re-registered the name as a new service instead of writing into the deleted one.
    expect(services).toHaveLength(1)
    expect(services[0].id).not.toBe(created.json().id)
  })
})

// One standalone server behind a TCP proxy: on a cluster, test/cluster covers a lost node (a killed master).
describe.skipIf(process.env.REDIS_URL?.startsWith('redis+cluster'))('a process whose Redis connections silently stop answering', () => {
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>
  let c: FastifyInstance
  beforeAll(async () => {
    const redisUrl = new URL(process.env.REDIS_URL!)
    proxy = await startTcpProxy(Number(redisUrl.port || 6379))
    redisUrl.host = `127.0.0.1:${proxy.port}`
    c = await buildApp(testConfig({ REDIS_URL: redisUrl.toString(), REDIS_COMMAND_TIMEOUT_MS: '300' }), { logger: false })
    await c.ready()
  })
  afterAll(async () => {
    proxy.restore()
    await c.close()
    await proxy.close()
  })

  it('stops trusting its API-key cache, so a key revoked meanwhile is refused', async () => {
    const org = await signup(a.app)
    const key = await apiKey(a.app, org)
    const list = () => call(c, key.key, { method: 'GET', url: '/v1/services' })
    const live = async () => /^autopilot_cache_invalidations_live (\d)$/m.exec((await c.inject({ method: 'GET', url: '/metrics' })).body)?.[1]
    await vi.waitFor(() => expect(c.invalidation.isFresh()).toBe(true))
    expect(await live()).toBe('1')
    expect((await list()).statusCode).toBe(200) // cached in c's memory

    proxy.blackhole() // c neither gets the invalidation nor any answer from Redis, and is not told so
    expect((await call(a.app, org.token, { method: 'DELETE', url: `/v1/api-keys/${key.id}` })).statusCode).toBe(204)
    expect(c.invalidation.isFresh()).toBe(false)
    expect(await live()).toBe('0')
    // Neither memory nor Redis: Postgres, which knows the key is revoked.
    expect((await list()).statusCode).toBe(401)

    proxy.restore() // the dead connections are dropped; c reconnects with empty caches
    await vi.waitFor(() => expect(c.invalidation.isFresh()).toBe(true), { timeout: 5000 })
    expect((await list()).statusCode).toBe(401)
  })

  it('a revocation through it answers 503 while Redis is silent, holds through Postgres, and can be repeated', async () => {
    const org = await signup(a.app)
    const key = await apiKey(a.app, org)
    const revoke = () => call(c, org.token, { method: 'DELETE', url: `/v1/api-keys/${key.id}` })
    const list = (app: FastifyInstance) => call(app, key.key, { method: 'GET', url: '/v1/services' })
    expect((await list(a.app)).statusCode).toBe(200)

    proxy.blackhole()
    // Committed in Postgres, but the Redis tombstone could not be written: the caller is told to repeat.
    expectProblem(await revoke(), 503, 'unavailable')
    expect((await list(c)).statusCode).toBe(401) // c asks Postgres

    proxy.restore()
    await vi.waitFor(async () => expect(await c.redis.ping()).toBe('PONG'), { timeout: 5000 }) // what Retry-After waits for
    expect((await revoke()).statusCode).toBe(204)
    expect((await list(a.app)).statusCode).toBe(401) // a had it in Redis and in memory
    expect((await list(c)).statusCode).toBe(401)
  })
})
