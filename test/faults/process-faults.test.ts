import { setTimeout as sleep } from 'node:timers/promises'
import { inArray } from 'drizzle-orm'
import { afterAll, describe, expect, it } from 'vitest'
import { createDb } from '../../src/db/client.js'
import { actions, incidents } from '../../src/db/schema/index.js'
import { startReceiver } from '../receiver.js'
import { startRedis } from '../servers.js'
import { json, startProcess, tenant } from './processes.js'
import { warmSamples } from '../helpers.js'

const { db, pool } = createDb(process.env.DATABASE_URL!)
afterAll(() => pool.end())

const allSucceeded = (ids: string[], timeout: number) =>
  expect
    .poll(async () => (await db.select({ status: actions.status }).from(actions).where(inArray(actions.id, ids))).every((a) => a.status === 'succeeded'), {
      timeout,
      interval: 250
    })
    .toBe(true)

/** A private queue Redis, a webhook receiver and the API as a child process, sharing one queue prefix. */
async function remediationRig() {
  const queueRedis = await startRedis()
  const receiver = await startReceiver()
  const env = { QUEUE_REDIS_URL: queueRedis.url, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', SWEEP_INTERVAL_MS: '200', QUEUE_PREFIX: `{fault-${Date.now()}}` }
  const api = await startProcess('src/server.ts', env)
  return { queueRedis, receiver, env, api }
}

async function openIncident(url: string, key: string, token: string, service: string) {
  await json(`${url}/v1/services`, { token, body: { name: service, detection: { minSamples: 5, confirmSeconds: 0 } } })
  const send = (sample: object) => json(`${url}/v1/metrics`, { token: key, body: { samples: [sample] } })
  // Timestamped samples 5 minutes apart: enough sample time (minSpanSeconds 1800) for the baseline to score.
  for (const sample of warmSamples(service, 'lat', 8, { stepMs: 300_000 })) await send(sample)
  return (await send({ service, metric: 'lat', value: 900 })).body.incidents[0].id as string
}

describe('SIGTERM during a load burst', () => {
  it('exits 0, and every request that got a 2xx left its effect in Postgres', async () => {
    const api = await startProcess('src/server.ts', { QUEUE_REDIS_URL: 'redis://127.0.0.1:6379/1', LOG_LEVEL: process.env.FAULT_LOG_LEVEL ?? 'warn' })
    const { key } = await tenant(api.url)
    const results: { status: number; id?: string }[] = []
    let n = 0
    const fire = async () => {
      while (api.child.exitCode === null && n < 2000) {
        const i = n++
        const res = await json(`${api.url}/v1/alerts`, {
          token: key,
          body: { service: 'burst', dedupKey: `k-${i}`, action: 'trigger', title: `alert ${i}`, severity: 'warning' }
        })
        results.push({ status: res.status, id: res.body?.incident?.id })
        if (res.status === 0) return
      }
    }
    const load = Promise.all(Array.from({ length: 8 }, fire))
    await sleep(1500)
    const code = api.kill('SIGTERM')
    await load
    expect(await code, api.stderr().split('\n').filter((l) => !l.includes('request completed') && !l.includes('incoming request')).slice(-25).join('\n')).toBe(0)
    const ok = results.filter((r) => r.status === 202)
    expect(ok.length).toBeGreaterThan(20)
    expect(results.every((r) => [202, 503, 0].includes(r.status))).toBe(true)
    const found = await db.select({ id: incidents.id }).from(incidents).where(inArray(incidents.id, ok.map((r) => r.id!)))
    expect(found).toHaveLength(ok.length)
  }, 60_000)
})

describe('API killed (kill -9) after committing approvals, before they reached the queue', () => {
  it('the reconciler dispatches them after restart; each runs exactly once', async () => {
    const { queueRedis, receiver, env, api } = await remediationRig()
    let worker: Awaited<ReturnType<typeof startProcess>> | undefined
    try {
      const { key, token } = await tenant(api.url)
      const incidentId = await openIncident(api.url, key, token, 'crashy')
      const ids: string[] = []
      for (let i = 0; i < 5; i++) {
        const res = await json(`${api.url}/v1/incidents/${incidentId}/actions`, { token, body: { type: 'webhook', params: { url: `${receiver.url}/c${i}` } } })
        ids.push(res.body.id)
      }
      // The queue Redis hangs: approvals commit in Postgres, their enqueue cannot finish; then the API dies.
      queueRedis.signal('SIGSTOP')
      for (const id of ids) expect((await json(`${api.url}/v1/actions/${id}/approve`, { token, body: {} })).status).toBe(200)
      await api.kill('SIGKILL')
      queueRedis.signal('SIGCONT')
      const states = await db.select({ status: actions.status }).from(actions).where(inArray(actions.id, ids))
      expect(states.every((s) => s.status === 'approved')).toBe(true)

      worker = await startProcess('src/worker.ts', env)
      await allSucceeded(ids, 30_000)
      await sleep(500)
      expect(receiver.received.map((r) => r.url).sort()).toEqual(ids.map((_, i) => `/c${i}`).sort())
    } finally {
      await api.kill()
      await worker?.kill('SIGTERM')
      await receiver.close()
      await queueRedis.stop()
    }
  }, 90_000)
})

describe('queue Redis restarted empty with 30 approved actions in the queue', () => {
  it('each executes exactly once', async () => {
    const { queueRedis, receiver, env, api } = await remediationRig()
    let worker: Awaited<ReturnType<typeof startProcess>> | undefined
    try {
      const { key, token } = await tenant(api.url)
      const ids: string[] = []
      // Three services, so actions also run in parallel (one at a time per service).
      for (const service of ['q-a', 'q-b', 'q-c']) {
        const incidentId = await openIncident(api.url, key, token, service)
        for (let i = 0; i < 10; i++) {
          const res = await json(`${api.url}/v1/incidents/${incidentId}/actions`, { token, body: { type: 'webhook', params: { url: `${receiver.url}/${service}/${i}` } } })
          ids.push(res.body.id)
          expect((await json(`${api.url}/v1/actions/${res.body.id}/approve`, { token, body: {} })).body.status).toBe('queued')
        }
      }
      await queueRedis.restart() // every job is gone
      worker = await startProcess('src/worker.ts', env)
      await allSucceeded(ids, 60_000)
      await sleep(500)
      expect(receiver.received).toHaveLength(30)
      expect(new Set(receiver.received.map((r) => r.url)).size).toBe(30)
    } finally {
      await api.kill()
      await worker?.kill('SIGTERM')
      await receiver.close()
      await queueRedis.stop()
    }
  }, 120_000)
})
