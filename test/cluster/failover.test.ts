import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keys } from '../../src/redis/keys.js'
import { json, startProcess, tenant } from '../faults/processes.js'
import { warmSamples } from '../helpers.js'
import { startRedisCluster } from '../servers.js'

/*
 * A master of the state role's cluster killed (kill -9) under ingestion, with real API processes: its
 * replica is promoted; meanwhile the API answers 202 or a bounded 503 with Retry-After, never a 500, and
 * detection carries on on the promoted replica.
 */
describe('Redis Cluster: a master killed under ingestion (real API process)', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>
  let api: Awaited<ReturnType<typeof startProcess>>
  beforeAll(async () => {
    cluster = await startRedisCluster()
    api = await startProcess('src/server.ts', { REDIS_URL: cluster.url, QUEUE_REDIS_URL: cluster.url })
  }, 60_000)
  afterAll(async () => {
    await api?.kill()
    await cluster?.stop()
  })

  /** The port of the master serving `key` now. */
  async function masterOf(key: string): Promise<number> {
    const probe = new Redis({ port: cluster.ports[0], host: '127.0.0.1' })
    try {
      const slots = (await probe.cluster('SLOTS')) as unknown as [number, number, [string, number]][]
      const slot = Number(await probe.cluster('KEYSLOT', key))
      return slots.find(([from, to]) => slot >= from && slot <= to)![2][1]
    } finally {
      probe.disconnect()
    }
  }

  it('answers 202 or a bounded 503 with Retry-After while the replica takes over, then detects again', async () => {
    const { key, token } = await tenant(api.url)
    const created = await json(`${api.url}/v1/services`, { token, body: { name: 'shard-victim', detection: { minSamples: 5, confirmSeconds: 0 } } })
    expect(created.status).toBe(201)
    const serviceId = created.body.id as string
    const sendSample = (sample: object) => json(`${api.url}/v1/metrics`, { token: key, body: { samples: [sample] } })
    for (const sample of warmSamples('shard-victim', 'lat', 10, { stepMs: 300_000 })) expect((await sendSample(sample)).status).toBe(202)

    await sleep(500) // replicated to the replica (asynchronously, within milliseconds here)
    const victim = await masterOf(keys.paging(serviceId))
    const mastersBefore = await cluster.mastersNow()
    expect(mastersBefore).toContain(victim)
    await cluster.kill(victim)

    // Ingestion goes on through the failover: every answer a 202 or a 503 with Retry-After, each bounded.
    // (A command for the dead master's slots is retried by the cluster client while it refreshes its slot
    // map, within REDIS_COMMAND_TIMEOUT_MS per command; a request makes a few: some answers wait, then
    // succeed on the promoted replica, others give up with a 503.)
    const answers: Awaited<ReturnType<typeof json>>[] = []
    const started = Date.now()
    let promoted = false
    while (Date.now() - started < 30_000) {
      const res = await sendSample({ service: 'shard-victim', metric: 'lat', value: 100 })
      answers.push(res)
      if (!promoted) promoted = (await cluster.mastersNow().catch((): number[] => [])).filter((port) => port !== victim).length === 3
      if (promoted && res.status === 202) break
      await sleep(100)
    }
    const summary = answers.map((a) => `${a.status}:${a.ms}`).join(' ')
    for (const res of answers) {
      expect([202, 503], summary).toContain(res.status)
      expect(res.ms, summary).toBeLessThan(8000)
      if (res.status === 503) expect(res.headers.get('retry-after'), summary).toBeTruthy()
    }
    expect(promoted, summary).toBe(true)
    expect(answers.at(-1)!.status, summary).toBe(202)

    // A replica took the dead master's slots, and detection works there (its baseline moved with it).
    const mastersAfter = await cluster.mastersNow()
    expect(mastersAfter).not.toContain(victim)
    expect(mastersAfter).toHaveLength(3)
    const spike = await sendSample({ service: 'shard-victim', metric: 'lat', value: 900 })
    expect(spike.status).toBe(202)
    expect(spike.body.anomalies).toHaveLength(1)
    // Readiness follows as every node learns the new master.
    await expect.poll(async () => (await json(`${api.url}/health/ready`)).status, { timeout: 15_000, interval: 250 }).toBe(200)
    expect(api.stderr()).not.toMatch(/"statusCode":500|unhandled/i)
  }, 90_000)
})
