import { randomUUID } from 'node:crypto'
import { eq } from 'drizzle-orm'
import type { FastifyInstance } from 'fastify'
import { Cluster, Redis } from 'ioredis'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import type { Config } from '../../src/config.js'
import { actions } from '../../src/db/schema/index.js'
import { deferOutcome, DEAD_LETTER_STREAM, DLQ_STREAM, LEGACY_DLQ_STREAMS, startReplayer, type DeferredOutcome } from '../../src/jobs/dlq.js'
import { createServiceResolver } from '../../src/modules/services/resolver.js'
import { createRedis } from '../../src/redis/client.js'
import { keys } from '../../src/redis/keys.js'
import { queuePrefix, type QueueName } from '../../src/redis/queues.js'
import { createBatchedRedisStore } from '../../src/redis/rate-limit-store.js'
import { PLAN_LIMITS } from '../../src/modules/subscription/plans.js'
import { startWorker } from '../../src/worker.js'
import { openIncident } from '../fixtures.js'
import { apiKey, auditActions, call, clockStoppedInAMinute, createService, signup, testConfig, userWithRole, type Org } from '../helpers.js'
import { startRedisCluster } from '../servers.js'

/**
 * Every multi-key operation on a real Redis Cluster (3 masters, 3 replicas, private to this file): each
 * pipeline or transaction must stay in one slot (else CROSSSLOT, or ioredis refuses a pipeline spanning
 * masters), and the queues must spread over the shards.
 */
const QUEUES: QueueName[] = ['actions', 'timers', 'maintenance']
let cluster: Awaited<ReturnType<typeof startRedisCluster>>
let config: Config
let first: FastifyInstance
let second: FastifyInstance
/** A direct client to the cluster, for what the test reads and writes itself. */
let direct: Cluster
const clock = clockStoppedInAMinute()

/** The slot → master port map of the cluster now. */
async function slotOwners(): Promise<(slot: number) => number> {
  const ranges = (await direct.cluster('SLOTS')) as unknown as [number, number, [string, number]][]
  return (slot) => ranges.find(([start, end]) => slot >= start && slot <= end)![2][1]
}
const keyslot = (key: string) => direct.cluster('KEYSLOT', key) as Promise<number>

beforeAll(async () => {
  cluster = await startRedisCluster()
  direct = createRedis(cluster.url, 'state', 2000, { lazyConnect: false, enableOfflineQueue: true }) as Cluster
  await new Promise((resolve) => direct.once('ready', resolve))
  // A QUEUE_PREFIX whose three queues are owned by at least two masters (a random one puts all three on
  // one master once in nine runs).
  const owner = await slotOwners()
  let base = ''
  for (let i = 0; i < 50 && !base; i++) {
    const candidate = `slots-${randomUUID().slice(0, 8)}`
    const owners = await Promise.all(QUEUES.map(async (name) => owner(await keyslot(`${queuePrefix(candidate, name)}:${name}:meta`))))
    if (new Set(owners).size >= 2) base = candidate
  }
  const env = { REDIS_URL: cluster.url, QUEUE_REDIS_URL: cluster.url, QUEUE_PREFIX: `{${base}}` }
  config = testConfig(env)
  first = await buildApp(config, { logger: false, clock })
  second = await buildApp(testConfig(env), { logger: false, clock })
  await Promise.all([first.ready(), second.ready()])
}, 60_000)

afterAll(async () => {
  await Promise.all([first?.close(), second?.close()])
  direct?.disconnect()
  await cluster?.stop()
})

describe('on a Redis Cluster', () => {
  it('the apps run on the cluster', () => {
    expect(first.redis).toBeInstanceOf(Cluster)
    expect(first.queueRedis).toBeInstanceOf(Cluster)
  })

  it('the audit DLQ: a deferred outcome and one left under the old stream name are replayed; a refused one is dead-lettered', async () => {
    const org = await signup(first, 'DLQ on a cluster')
    const operator = await userWithRole(first, org, 'operator')
    // Two actions left running (each of its own service: one runs per service at a time).
    const running = async () => {
      const service = await createService(first, org)
      const incident = await openIncident(first, org, service.id)
      const proposed = await call(first, operator, { method: 'POST', url: `/v1/incidents/${incident.id}/actions`, payload: { type: 'dry_run', params: { scale: 3 } } })
      expect(proposed.statusCode, proposed.body).toBe(201)
      const id = proposed.json().id as string
      await first.db.update(actions).set({ status: 'running', startedAt: new Date() }).where(eq(actions.id, id))
      return id
    }
    const outcome = (actionId: string): DeferredOutcome => ({
      kind: 'action_outcome',
      organizationId: org.organizationId,
      actionId,
      set: { status: 'succeeded', result: { replayed: true }, error: null, attempts: 1, finishedAt: new Date().toISOString() },
      ctx: { organizationId: org.organizationId, actor: { type: 'system', id: null }, requestId: undefined },
      audit: { id: randomUUID(), action: 'action.succeeded', resourceType: 'action', resourceId: actionId }
    })
    const deferred = outcome(await running())
    const legacy = outcome(await running())
    // Postgres refuses this one for good (not a uuid): it ends in the dead-letter stream.
    const refused = outcome('not-a-uuid')

    await deferOutcome(first.queueRedis, deferred)
    await deferOutcome(first.queueRedis, refused)
    await direct.xadd(LEGACY_DLQ_STREAMS[DLQ_STREAM], '*', 'entry', JSON.stringify(legacy))
    await direct.xadd(LEGACY_DLQ_STREAMS[DEAD_LETTER_STREAM], '*', 'entry', '{}', 'error', 'from an earlier version', 'from', '0-1')

    // As the worker's replay connection: blocking reads, so no command timeout, and an offline queue.
    const redis = createRedis(cluster.url, 'queue', 2000, { lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined })
    redis.on('error', () => {})
    const stop = startReplayer({ db: first.db, redis, log: pino({ level: 'silent' }), consumer: 'cluster-test', maxDeliveries: 1, idleMs: 50 })
    try {
      const statusOf = async (id: string) => (await call(first, org.token, { method: 'GET', url: `/v1/actions/${id}` })).json().status
      await expect.poll(() => statusOf(deferred.actionId), { timeout: 10_000 }).toBe('succeeded')
      await expect.poll(() => statusOf(legacy.actionId), { timeout: 10_000 }).toBe('succeeded')
      await expect.poll(() => direct.xlen(DLQ_STREAM), { timeout: 10_000 }).toBe(0)
      const dead = await direct.xrange(DEAD_LETTER_STREAM, '-', '+')
      expect(dead.map(([, fields]) => fields[1])).toEqual(expect.arrayContaining(['{}', JSON.stringify(refused)]))
      expect(await direct.xlen(LEGACY_DLQ_STREAMS[DLQ_STREAM])).toBe(0)
      expect(await direct.xlen(LEGACY_DLQ_STREAMS[DEAD_LETTER_STREAM])).toBe(0)
      // One audit row each, with the id the outcome was deferred with.
      const audit = (await auditActions(first, org)).filter((row) => row.action === 'action.succeeded')
      for (const entry of [deferred, legacy]) expect(audit.filter((row) => row.resourceId === entry.actionId)).toHaveLength(1)
    } finally {
      await stop()
      redis.disconnect()
    }
  })

  it('the rate-limit store flushes counters of many slots in one go, and two stores share the counts', async () => {
    const names = Array.from({ length: 24 }, (_, i) => `key-${i}`)
    // Two stores on one prefix, as in two API processes.
    const prefix = `rate_limit:slots-${randomUUID()}:`
    const errors: unknown[] = []
    const one = createBatchedRedisStore(first.redis, prefix, 50, (err) => errors.push(err), clock)
    const other = createBatchedRedisStore(second.redis, prefix, 50, (err) => errors.push(err), clock)
    const [storeOne, storeOther] = [new one.Store(), new other.Store()]
    for (let hit = 0; hit < 3; hit++) for (const name of names) storeOne.incr(name, () => {}, 60_000)
    await one.close()
    const window = Math.floor(clock.now().getTime() / 60_000)
    const stored = await Promise.all(names.map((name) => direct.get(`${prefix}${name}:${window}`)))
    expect(stored).toEqual(names.map(() => '3'))
    const ttls = await Promise.all(names.map((name) => direct.pttl(`${prefix}${name}:${window}`)))
    expect(ttls.every((ttl) => ttl > 0)).toBe(true)
    // The keys are spread over the masters, not in one slot.
    const owner = await slotOwners()
    expect(new Set(await Promise.all(names.map(async (name) => owner(await keyslot(`${prefix}${name}:${window}`))))).size).toBe(3)

    for (const name of names) storeOther.incr(name, () => {}, 60_000)
    await other.close()
    const seen = await new Promise<number>((resolve) => storeOther.incr(names[0]!, (_err, result) => resolve(result!.current), 60_000))
    expect(seen).toBe(5) // 3 from the first store, 1 flushed and 1 pending here
    expect(errors).toEqual([])
  })

  it('the per-credential rate limit counts across two API instances: 429 once the shared budget is spent', async () => {
    const org = await signup(first, 'Rate limits on a cluster')
    const key = await apiKey(first, org)
    const other = await apiKey(first, org)
    const limit = PLAN_LIMITS.free.requestsPerMinute
    const get = (app: FastifyInstance, credential = key.key) => call(app, credential, { method: 'GET', url: '/v1/subscription' })
    // Interleaved with other credentials, so the flushes carry counters of several slots.
    for (let i = 0; i < limit - 50; i++) {
      expect((await get(first)).statusCode).toBe(200)
      if (i % 10 === 0) await Promise.all([get(first, other.key), get(first, org.token)])
    }
    await new Promise((resolve) => setTimeout(resolve, 300))
    const statuses: number[] = []
    for (let i = 0; i < 100; i++) statuses.push((await get(second)).statusCode)
    const passed = statuses.filter((s) => s === 200).length
    expect(passed).toBeGreaterThanOrEqual(40)
    expect(passed).toBeLessThan(75)
    expect(statuses.at(-1)).toBe(429)
  })

  it('service names resolve in one pipeline per organization, cold and warm, and forget writes the same key', async () => {
    const org = await signup(first, 'Resolution on a cluster')
    const ctx = { organizationId: org.organizationId, actor: { type: 'system' as const, id: null }, requestId: undefined }
    const names = ['api', 'db', 'cache']
    const errors: unknown[] = []
    const resolver = (app: FastifyInstance) =>
      createServiceResolver({ db: app.db, redis: app.redis, invalidation: app.invalidation, services: app.services.services, onCacheError: (err) => errors.push(err) })
    const idsOf = (resolved: Map<string, unknown>) => names.map((name) => (resolved.get(name) as { id: string }).id)

    // Cold: in no cache, not in Postgres either: registered.
    const registered = idsOf(await resolver(first).resolve(ctx, names))
    // Another process, cold in memory: Postgres, then cached in Redis (one pipeline of SET NX).
    expect(idsOf(await resolver(second).resolve(ctx, names))).toEqual(registered)
    const cached = await Promise.all(names.map((name) => direct.get(keys.serviceByName(org.organizationId, name))))
    expect(cached.map((value) => JSON.parse(value!).id)).toEqual(registered)
    // Warm Redis: read in one pipeline of GETs.
    const warm = resolver(second)
    expect(idsOf(await warm.resolve(ctx, names))).toEqual(registered)
    expect(new Set(await Promise.all(names.map((name) => keyslot(keys.serviceByName(org.organizationId, name))))).size).toBe(1)
    await warm.forget(org.organizationId, 'db')
    expect(await direct.get(keys.serviceByName(org.organizationId, 'db'))).toBe('-')
    expect(errors).toEqual([])

    // Through the API: a batch of several services, on both instances.
    const agent = await apiKey(first, org)
    for (const app of [first, second]) {
      const res = await call(app, agent.key, { method: 'POST', url: '/v1/metrics', payload: { samples: names.map((service) => ({ service, metric: 'm', value: 1 })) } })
      expect(res.statusCode, res.body).toBe(202)
      expect(res.json().accepted).toBe(names.length)
    }
  })

  it('the action mirror and the pending list are written together, in the organization slot', async () => {
    const org: Org = await signup(first, 'Mirror on a cluster')
    const operator = await userWithRole(first, org, 'operator')
    const service = await createService(first, org)
    const incident = await openIncident(first, org, service.id)
    const proposed = await call(first, operator, { method: 'POST', url: `/v1/incidents/${incident.id}/actions`, payload: { type: 'dry_run', params: { scale: 2 } } })
    expect(proposed.statusCode, proposed.body).toBe(201)
    const id = proposed.json().id as string
    await expect.poll(() => direct.hget(keys.action(org.organizationId, id), 'status')).toBe('pending_approval')
    expect(await direct.zscore(keys.pendingActions(org.organizationId), id)).not.toBeNull()
    expect(await keyslot(keys.action(org.organizationId, id))).toBe(await keyslot(keys.pendingActions(org.organizationId)))
  })

  it('each BullMQ queue has its own hash tag: their slots differ and at least two masters own them; the worker runs them', async () => {
    const stop = await startWorker({ ...config, sweepIntervalMs: 200 }, pino({ level: 'silent' }))
    try {
      const owner = await slotOwners()
      const masters = await cluster.mastersNow()
      const placed = await Promise.all(
        QUEUES.map(async (name) => {
          const key = first.queues[name].toKey('meta')
          expect(key.startsWith(`${queuePrefix(config.queuePrefix, name)}:${name}:`)).toBe(true)
          return { name, key, slot: await keyslot(key), port: owner(await keyslot(key)) }
        })
      )
      expect(new Set(placed.map((p) => p.slot)).size).toBe(3)
      expect(new Set(placed.map((p) => p.port)).size).toBeGreaterThanOrEqual(2)
      for (const { port } of placed) expect(masters).toContain(port)
      // The periodic queues run through the worker, and their keys are on the masters computed above.
      for (const name of ['timers', 'maintenance'] as const) {
        await expect.poll(() => first.queues[name].getJobCounts('completed').then((c) => c.completed), { timeout: 15_000 }).toBeGreaterThanOrEqual(1)
      }
      for (const { name, port } of placed.filter((p) => p.name !== 'actions')) {
        const node = new Redis({ host: '127.0.0.1', port })
        try {
          const [, found] = await node.scan('0', 'MATCH', `${queuePrefix(config.queuePrefix, name)}:*`, 'COUNT', 10_000)
          expect(found.length, name).toBeGreaterThan(0)
        } finally {
          node.disconnect()
        }
      }
      // An action job goes through the actions queue on its own master.
      await first.queues.actions.add('execute', { actionId: randomUUID() }, { jobId: randomUUID() })
      await expect.poll(() => first.queues.actions.getJobCounts('completed', 'failed').then((c) => (c.completed ?? 0) + (c.failed ?? 0)), { timeout: 15_000 }).toBeGreaterThanOrEqual(1)
    } finally {
      await stop()
    }
  }, 40_000)

  it('/health/ready and /metrics: ok on the cluster (every master answering, state ok); down after every node is killed', async () => {
    const ready = await first.inject({ method: 'GET', url: '/health/ready' })
    expect(ready.statusCode, ready.body).toBe(200)
    const body = ready.json()
    expect(body).toMatchObject({ status: 'ok', checks: { postgres: 'ok', redis: 'ok', queue: 'ok' } })
    expect(body.cluster.redis).toMatchObject({ state: 'ok', masters: 3, mastersUp: 3 })
    expect(body.cluster.queue).toMatchObject({ state: 'ok', masters: 3, mastersUp: 3 })
    // Ingestion above ran the scoring script on at least one master; the others load it on first use.
    expect(body.cluster.redis.scriptsLoaded).toBeGreaterThanOrEqual(1)
    expect(body.cluster.queue.scriptsLoaded).toBeUndefined()
    const metrics = (await first.inject({ method: 'GET', url: '/metrics' })).body
    expect(metrics).toContain('autopilot_dependency_up{dependency="redis"} 1')
    expect(metrics).toContain('autopilot_dependency_up{dependency="queue_redis"} 1')
    expect(metrics).toContain('autopilot_redis_cluster_masters{role="state",state="up"} 3')

    await Promise.all(cluster.ports.map((port) => cluster.kill(port)))
    const started = Date.now()
    const down = await first.inject({ method: 'GET', url: '/health/ready' })
    expect(Date.now() - started).toBeLessThan(3000)
    expect(down.statusCode, down.body).toBe(503)
    expect(down.json()).toMatchObject({ status: 'degraded', checks: { postgres: 'ok', redis: 'down', queue: 'down' } })
    const after = (await first.inject({ method: 'GET', url: '/metrics' })).body
    expect(after).toContain('autopilot_dependency_up{dependency="redis"} 0')
    expect(after).toContain('autopilot_dependency_up{dependency="queue_redis"} 0')
  })
})
