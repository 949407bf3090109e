import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { startWorker } from '../../src/worker.js'
import { apiKey, call, signup, testConfig, warmSamples } from '../helpers.js'
import { startReceiver } from '../receiver.js'
import { startRedisSentinel } from '../servers.js'

type App = Awaited<ReturnType<typeof buildApp>>

/*
 * Both Redis roles under Sentinel (1 master, 2 replicas, 3 sentinels, from Debian's redis-server): the master
 * killed (kill -9) under ingestion and approvals. A replica is promoted and the clients follow it; meanwhile
 * the API answers 202 or a bounded 503 with Retry-After, never a 500; the approved action runs exactly once;
 * detection resumes; a key revoked after the failover fails on the very next request.
 */
describe('Sentinel: the master killed under ingestion and approvals', () => {
  let sentinel: Awaited<ReturnType<typeof startRedisSentinel>>
  let receiver: Awaited<ReturnType<typeof startReceiver>>
  let app: App
  let stopWorker: () => Promise<void>
  beforeAll(async () => {
    sentinel = await startRedisSentinel()
    receiver = await startReceiver()
    const config = testConfig({
      REDIS_URL: sentinel.url,
      QUEUE_REDIS_URL: sentinel.url,
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      SWEEP_INTERVAL_MS: '200',
      LOG_LEVEL: process.env.SENTINEL_TEST_LOG_LEVEL ?? 'silent'
    })
    app = await buildApp(config, { logger: false })
    stopWorker = await startWorker(config, undefined)
  }, 60_000)
  afterAll(async () => {
    await stopWorker?.()
    await app?.close()
    await receiver?.close()
    await sentinel?.stop()
  })

  it('fails over with bounded 503s, loses no approved action, runs it once, and keeps revocation', async () => {
    const org = await signup(app)
    const key = (await apiKey(app, org)).key
    const spare = await apiKey(app, org)
    await call(app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'svc', detection: { minSamples: 5, confirmSeconds: 0 } } })
    const send = (samples: object[]) => call(app, key, { method: 'POST', url: '/v1/metrics', payload: { samples } })
    expect((await send(warmSamples('svc', 'm', 10, { stepMs: 300_000 }))).statusCode).toBe(202)
    const incidentId = (await send([{ service: 'svc', metric: 'm', value: 900 }])).json().incidents[0].id as string
    const proposed = await call(app, org.token, { method: 'POST', url: `/v1/incidents/${incidentId}/actions`, payload: { type: 'webhook', params: { url: `${receiver.url}/restart` } } })
    expect(proposed.statusCode, proposed.body).toBe(201)
    const actionId = proposed.json().id as string
    await sleep(300) // replicated (asynchronously, within milliseconds here)

    const master = (await sentinel.masterNow())!
    await sentinel.kill(master)

    // Ingestion and the approval go on through the failover: 2xx, or a bounded 503 with Retry-After.
    const answers: { status: number; ms: number; retryAfter?: string }[] = []
    let approved = false
    const started = Date.now()
    while (Date.now() - started < 30_000) {
      const t = performance.now()
      const res = await send([{ service: 'svc', metric: 'm', value: 100 }])
      answers.push({ status: res.statusCode, ms: performance.now() - t, retryAfter: res.headers['retry-after'] as string | undefined })
      if (!approved) {
        const approval = await call(app, org.token, { method: 'POST', url: `/v1/actions/${actionId}/approve` })
        answers.push({ status: approval.statusCode, ms: 0, retryAfter: approval.headers['retry-after'] as string | undefined })
        approved = approval.statusCode === 200
      }
      if (approved && res.statusCode === 202 && answers.some((a) => a.status === 503)) break
      await sleep(100)
    }
    const summary = answers.map((a) => `${a.status}:${Math.round(a.ms)}`).join(' ')
    for (const answer of answers) {
      expect([200, 202, 503], summary).toContain(answer.status)
      expect(answer.ms, summary).toBeLessThan(5000)
      if (answer.status === 503) expect(answer.retryAfter, summary).toBeTruthy()
    }
    expect(answers.some((a) => a.status === 503), summary).toBe(true)
    expect(approved, summary).toBe(true)
    const promoted = await sentinel.settled()
    expect(promoted).not.toBe(master)

    // The approved action runs exactly once, on the promoted master's queue.
    const waiting = Date.now()
    await expect.poll(async () => (await call(app, org.token, { method: 'GET', url: `/v1/actions/${actionId}` })).json().status, { timeout: 60_000, interval: 200 }).toBe('succeeded')
    console.log(`failover: ${summary}; the action succeeded ${Date.now() - waiting} ms after the failover settled`)
    await sleep(1000)
    expect(receiver.received.filter((r) => r.url === '/restart')).toHaveLength(1)

    // Detection resumes on the promoted master: a series learned now pages on its first spike.
    expect((await send(warmSamples('svc', 'after', 10, { stepMs: 300_000 }))).statusCode).toBe(202)
    const spike = await send([{ service: 'svc', metric: 'after', value: 5000 }])
    expect(spike.statusCode).toBe(202)
    expect(spike.json().anomalies).toHaveLength(1)

    // Revocation holds on the very next request.
    expect((await call(app, spare.key, { method: 'GET', url: '/v1/me' })).statusCode).toBe(200)
    expect((await call(app, org.token, { method: 'DELETE', url: `/v1/api-keys/${spare.id}` })).statusCode).toBeLessThan(300)
    expect((await call(app, spare.key, { method: 'GET', url: '/v1/me' })).statusCode).toBe(401)
  }, 150_000)
})
