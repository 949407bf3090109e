import { randomInt } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config.js'
import { apiKey, call, clockStoppedInAMinute, expectProblem, signup, useApp } from '../helpers.js'

/* Regressions of issue 13, items 11 and 14: addresses behind a proxy, and guessing credentials. */
const clock = clockStoppedInAMinute()
const behindProxy = useApp({ TRUST_PROXY: '127.0.0.1', AUTH_RATE_LIMIT_PER_MINUTE: '3', AUTH_FAILURES_PER_MINUTE: '5' }, { clock })
const direct = useApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { clock })
const METRICS_TOKEN = 'm'.repeat(40)
const withMetricsToken = useApp({ METRICS_TOKEN })
const production = useApp({ NODE_ENV: 'production', JWT_SECRET: 'p'.repeat(32) })

// Addresses of this run's own: the per-address counters live in Redis for the minute, across runs and files.
const run = `${randomInt(256)}.${randomInt(256)}`
const address = (last: number) => `10.${run}.${last}`
const login = (app: typeof behindProxy.app, forwardedFor: string, remoteAddress = '127.0.0.1') =>
  app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    remoteAddress,
    headers: { 'x-forwarded-for': forwardedFor },
    payload: { email: 'nobody@example.test', password: 'wrong password!' }
  })

describe('TRUST_PROXY', () => {
  it('behind a trusted proxy, each client address has its own auth limit', async () => {
    for (let i = 0; i < 3; i++) expect((await login(behindProxy.app, address(1))).statusCode).toBe(401)
    expectProblem(await login(behindProxy.app, address(1)), 429, 'rate_limited')
    // Another client behind the same load balancer is not locked out.
    expect((await login(behindProxy.app, address(2))).statusCode).toBe(401)
  })

  it('unset, X-Forwarded-For is not believed: a client cannot pick its address to dodge the limit', async () => {
    for (let i = 0; i < 3; i++) expect((await login(direct.app, `203.0.113.${i}`, address(3))).statusCode).toBe(401)
    expectProblem(await login(direct.app, '203.0.113.99', address(3)), 429, 'rate_limited')
  })

  it('takes addresses and ranges, and refuses anything else (true above all, and a hop count, which Fastify trusts nobody on)', () => {
    const env = { NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(32) }
    expect(loadConfig(env).trustProxy).toBe(false)
    expect(loadConfig({ ...env, TRUST_PROXY: '10.0.0.0/8,::1,fd00::/8' }).trustProxy).toEqual(['10.0.0.0/8', '::1', 'fd00::/8'])
    for (const bad of ['true', '2', '10.0.0.0/33', '10.0.0.300', 'proxy.example.com', '1,2']) {
      expect(() => loadConfig({ ...env, TRUST_PROXY: bad }), bad).toThrow(ConfigError)
    }
  })
})

describe('guessing API keys', () => {
  it('an address with too many failed authentications is refused before any lookup, for a minute', async () => {
    const org = await signup(behindProxy.app)
    const key = (await apiKey(behindProxy.app, org)).key
    const me = (token: string, from: string) => behindProxy.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': from } })
    for (let i = 0; i < 5; i++) expectProblem(await me(`dap_${'x'.repeat(40)}${i}`, '192.0.2.7'), 401, 'unauthorized')
    expectProblem(await me(`dap_${'y'.repeat(41)}`, '192.0.2.7'), 429, 'rate_limited')
    expectProblem(await me('not-a-token', '192.0.2.7'), 429, 'rate_limited')
    // Other addresses are not affected; the guessing one is let in again the next minute.
    expect((await me(key, '192.0.2.8')).statusCode).toBe(200)
    clock.advance(60_000)
    expect((await me(key, '192.0.2.7')).statusCode).toBe(200)
  })

  it('a revoked key stays refused (its refusal is remembered, never its identity)', async () => {
    const org = await signup(behindProxy.app)
    const created = await apiKey(behindProxy.app, org)
    const me = () => behindProxy.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${created.key}`, 'x-forwarded-for': '192.0.2.50' } })
    expect((await me()).statusCode).toBe(200)
    expect((await call(behindProxy.app, org.token, { method: 'DELETE', url: `/v1/api-keys/${created.id}` })).statusCode).toBeLessThan(300)
    expectProblem(await me(), 401, 'unauthorized')
    expectProblem(await me(), 401, 'unauthorized')
  })
})

describe('GET /metrics (figures of every tenant)', () => {
  it('with METRICS_TOKEN, answers only its bearer', async () => {
    const scrape = (authorization?: string) =>
      withMetricsToken.app.inject({ method: 'GET', url: '/metrics', headers: authorization ? { authorization } : {} })
    expectProblem(await scrape(), 401, 'unauthorized')
    expectProblem(await scrape(`Bearer ${'m'.repeat(39)}x`), 401, 'unauthorized')
    const org = await signup(withMetricsToken.app)
    expectProblem(await scrape(`Bearer ${(await apiKey(withMetricsToken.app, org)).key}`), 401, 'unauthorized')
    const res = await scrape(`Bearer ${METRICS_TOKEN}`)
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain('autopilot_dependency_up')
  })

  it('without it, is off in production', async () => {
    expectProblem(await production.app.inject({ method: 'GET', url: '/metrics' }), 404, 'not_found')
  })
})
