import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keys } from '../../src/redis/keys.js'
import { apiKey, call, signup } from '../helpers.js'
import { startRedisCluster } from '../servers.js'
import { appOn, masterOf, type TestCluster } from './shard-helpers.js'

const direct = (port: number) => {
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  return client
}

/**
 * Moves one slot from its master to another, key by key with pauses, the way `redis-cli --cluster
 * reshard` moves each slot (SETSLOT IMPORTING / MIGRATING, MIGRATE the keys, SETSLOT NODE), only slower,
 * so that requests meet the slot half moved: some of a script's keys on each side (TRYAGAIN) or all of them
 * moved (ASK).
 */
async function migrateSlot(cluster: TestCluster, slot: number, from: number, to: number, pauseMs: number) {
  const source = direct(from)
  const target = direct(to)
  try {
    const [sourceId, targetId] = [await source.cluster('MYID'), await target.cluster('MYID')]
    await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId)
    await source.cluster('SETSLOT', slot, 'MIGRATING', targetId)
    let moved = 0
    for (;;) {
      const batch = (await source.cluster('GETKEYSINSLOT', slot, 2)) as string[]
      if (batch.length === 0) break
      await source.migrate('127.0.0.1', to, '', 0, 5000, 'REPLACE', 'KEYS', ...batch)
      moved += batch.length
      await sleep(pauseMs)
    }
    // The new owner first, then the old one, then everyone else (what redis-cli does).
    await target.cluster('SETSLOT', slot, 'NODE', targetId)
    await source.cluster('SETSLOT', slot, 'NODE', targetId)
    for (const port of await cluster.mastersNow()) {
      if (port === from || port === to) continue
      const other = direct(port)
      await other.cluster('SETSLOT', slot, 'NODE', targetId).finally(() => other.disconnect())
    }
    return moved
  } finally {
    source.disconnect()
    target.disconnect()
  }
}

describe('Redis Cluster: a service slot migrated (resharded) under ingestion', () => {
  let cluster: TestCluster
  let app: FastifyInstance

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 0 })
    app = await appOn(cluster)
  }, 60_000)
  afterAll(async () => {
    await app?.close()
    await cluster?.stop()
  })

  it('every answer is 202 or a 503 to retry, the slot ends on its new master, and detection carries on there', async () => {
    const org = await signup(app)
    const key = (await apiKey(app, org)).key
    const created = await call(app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'moving', detection: { minSamples: 5, minSpanSeconds: 0, confirmSeconds: 0 } } })
    const serviceId = created.json().id as string
    const metrics = Array.from({ length: 12 }, (_, i) => `m${i}`)
    let t = Date.now() - 3_600_000
    const batch = () => metrics.map((metric, i) => ({ service: 'moving', metric, value: 100 + ((t / 1000 + i) % 3), timestamp: (t += 1000) }))
    // Warm baselines, so the series' models (and their history rings) exist in the slot before it moves.
    for (let i = 0; i < 10; i++) expect((await call(app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: batch() } })).statusCode).toBe(202)

    const slotKey = keys.model(serviceId, 'x')
    const from = await masterOf(cluster, slotKey)
    const to = (await cluster.mastersNow()).find((port) => port !== from)!
    const probe = direct(from)
    const slot = Number(await probe.cluster('KEYSLOT', slotKey))
    probe.disconnect()

    const answers = new Map<number, number>()
    let slowest = 0
    let ingesting = true
    const load = (async () => {
      while (ingesting) {
        const started = performance.now()
        const res = await call(app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: batch() } })
        slowest = Math.max(slowest, performance.now() - started)
        answers.set(res.statusCode, (answers.get(res.statusCode) ?? 0) + 1)
        expect([202, 503], res.body).toContain(res.statusCode)
        if (res.statusCode === 503) expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
      }
    })()
    const moved = await migrateSlot(cluster, slot, from, to, 30)
    await sleep(300)
    ingesting = false
    await load
    expect(moved).toBeGreaterThanOrEqual(metrics.length) // every series' model at least
    expect(answers.get(202)).toBeGreaterThan(0)
    // (A script whose keys are split between the two masters meets TRYAGAIN, and the client retries it.)
    console.log(`reshard: ${moved} keys of slot ${slot} moved ${from} → ${to} under ingestion; answers ${JSON.stringify(Object.fromEntries(answers))}; slowest ${Math.round(slowest)} ms`)

    expect(await masterOf(cluster, slotKey)).toBe(to)
    // Detection carries on at the new master with the baselines that moved: a spike is an anomaly at once.
    const spike = await call(app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: [{ service: 'moving', metric: 'm0', value: 10_000, timestamp: (t += 1000) }] } })
    expect(spike.statusCode).toBe(202)
    expect(spike.json().anomalies).toHaveLength(1)
    const baselines = await call(app, org.token, { method: 'GET', url: `/v1/services/${serviceId}/baselines` })
    expect(baselines.statusCode).toBe(200)
    expect(baselines.json().items).toHaveLength(metrics.length)
    for (const baseline of baselines.json().items as { samples: number }[]) expect(baseline.samples).toBeGreaterThanOrEqual(10)
  }, 120_000)
})
