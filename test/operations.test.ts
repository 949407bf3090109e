import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { apiKey, call, PASSWORD, signup, testConfig, uniqueEmail, useApp } from './helpers.js'
import { startRedis } from './servers.js'

const ctx = useApp()

describe('GET /metrics', () => {
  it('exposes HTTP latency by route, ingestion counters and dependency gauges in Prometheus format', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: [{ service: 'm', metric: 'x', value: 1 }, { service: 'BAD', metric: 'x', value: 1 }] } })
    const res = await ctx.app.inject({ method: 'GET', url: '/metrics' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
    const text = res.body
    expect(text).toMatch(/http_request_duration_seconds_bucket\{[^}]*route="\/v1\/metrics"/)
    expect(text).toMatch(/autopilot_samples_ingested_total\{outcome="accepted"\} [1-9]/)
    expect(text).toMatch(/autopilot_samples_ingested_total\{outcome="rejected"\} [1-9]/)
    for (const dependency of ['postgres', 'redis', 'queue_redis']) expect(text).toContain(`autopilot_dependency_up{dependency="${dependency}"} 1`)
    expect(text).toMatch(/autopilot_incidents_open \d+/)
    expect(text).toMatch(/autopilot_queue_jobs\{queue="actions",state="waiting"\} \d+/)
    expect(text).toMatch(/autopilot_audit_dlq_entries \d+/)
    expect(text).toContain('process_cpu_user_seconds_total')
  })
})

describe('logs', () => {
  it('never contain passwords, tokens or API keys', async () => {
    const lines: string[] = []
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk))
        done()
      }
    })
    const app = await buildApp(testConfig(), { logger: { level: 'trace', stream: sink } as never })
    try {
      const email = uniqueEmail()
      const signed = await app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: PASSWORD, organization: 'Logs' } })
      const { accessToken, refreshToken } = signed.json()
      const key = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: { authorization: `Bearer ${accessToken}` }, payload: { name: 'k', role: 'agent' } })
      await app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${key.json().key}` } })
      await app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken } })
      await app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: 'Bearer dap_wrong' } })
      const all = lines.join('')
      expect(all.length).toBeGreaterThan(0)
      for (const secret of [PASSWORD, accessToken, refreshToken, key.json().key]) expect(all).not.toContain(secret)
      expect(all).toContain('"reqId"') // every request line carries its id
    } finally {
      await app.close()
    }
  })
})

describe('bounded Redis memory', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(() => redis?.stop())

  it('after a run touching every feature, no state key lacks a TTL', async () => {
    const app = await buildApp(testConfig({ REDIS_URL: redis.url, QUEUE_REDIS_URL: 'redis://127.0.0.1:6379/1' }), { logger: false })
    try {
      const org = await signup(app)
      const key = (await apiKey(app, org)).key
      // Three services warmed over two hours of sample time (a baseline scores only with 30 min behind it).
      const from = Date.now() - 130 * 60_000
      const send = (values: number[], timed = false) =>
        call(app, key, {
          method: 'POST',
          url: '/v1/metrics',
          payload: { samples: values.map((value, i) => ({ service: `svc-${i % 3}`, metric: 'lat', value, ...(timed ? { timestamp: from + i * 60_000 } : {}) })) }
        })
      await send(Array.from({ length: 120 }, (_, i) => 100 + (i % 5)), true)
      await send([900, 900, 900])
      await call(app, key, { method: 'POST', url: '/v1/alerts', payload: { service: 'svc-0', dedupKey: 'k', action: 'trigger', title: 't', severity: 'warning' } })
      await call(app, org.token, { method: 'POST', url: '/v1/suppression-rules', payload: { startsAt: Date.now(), endsAt: Date.now() + 60_000, reason: 'x' } })
      const incident = (await call(app, org.token, { method: 'GET', url: '/v1/incidents?status=open' })).json().items[0]
      const action = await call(app, org.token, { method: 'POST', url: `/v1/incidents/${incident.id}/actions`, payload: { type: 'dry_run', params: {} } })
      await call(app, org.token, { method: 'POST', url: `/v1/actions/${action.json().id}/approve` })
      await call(app, org.token, { method: 'DELETE', url: `/v1/api-keys/${(await apiKey(app, org)).id}` })
      await new Promise((resolve) => setTimeout(resolve, 300)) // let the batched counters flush

      const client = new (await import('ioredis')).Redis(redis.url)
      const keys = await client.keys('*')
      expect(keys.length).toBeGreaterThan(10)
      const withoutTtl = []
      for (const k of keys) if ((await client.pttl(k)) < 0) withoutTtl.push(k)
      client.disconnect()
      expect(withoutTtl).toEqual([])
      expect(keys.some((k) => k.startsWith('model:{'))).toBe(true)
      expect(keys.some((k) => k.startsWith('recent_anomalies:{'))).toBe(true)
      expect(keys.some((k) => k.startsWith('events:'))).toBe(true)
      expect(keys.some((k) => k.startsWith('rate_limit:'))).toBe(true)
    } finally {
      await app.close()
    }
  })
})
