import { randomInt } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { PLAN_LIMITS } from '../../src/modules/subscription/plans.js'
import { apiKey, call, expectProblem, signup, clockStoppedInAMinute, uniqueEmail, useApp } from '../helpers.js'

describe('per-credential rate limit', () => {
  const ctx = useApp({}, { clock: clockStoppedInAMinute() })

  it('limits each credential by its plan and answers 429 with Retry-After', async () => {
    const org = await signup(ctx.app)
    const key = await apiKey(ctx.app, org)
    const limit = PLAN_LIMITS.free.requestsPerMinute
    let last
    for (let i = 0; i < limit; i++) {
      last = await call(ctx.app, key.key, { method: 'GET', url: '/v1/subscription' })
      expect(last.statusCode).toBe(200)
    }
    expect(last!.headers['x-ratelimit-limit']).toBe(String(limit))
    expect(last!.headers['x-ratelimit-remaining']).toBe('0')
    const limited = await call(ctx.app, key.key, { method: 'GET', url: '/v1/subscription' })
    expectProblem(limited, 429, 'rate_limited')
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)

    // Keyed by credential: the owner's own token is unaffected.
    expect((await call(ctx.app, org.token, { method: 'GET', url: '/v1/subscription' })).statusCode).toBe(200)
  })

})

describe('per-credential rate limit across processes', () => {
  const clock = clockStoppedInAMinute()
  const first = useApp({}, { clock })
  const second = useApp({}, { clock })

  it('two API processes share one budget through Redis (synced every 100 ms)', async () => {
    const org = await signup(first.app)
    const key = await apiKey(first.app, org)
    const limit = PLAN_LIMITS.free.requestsPerMinute
    const get = (ctx: typeof first) => call(ctx.app, key.key, { method: 'GET', url: '/v1/subscription' })
    for (let i = 0; i < limit - 50; i++) expect((await get(first)).statusCode).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const statuses: number[] = []
    for (let i = 0; i < 100; i++) statuses.push((await get(second)).statusCode)
    // The second process alone saw 100 requests, far below the limit, yet it refuses once the budget the
    // two share is spent (give or take the requests made before its first sync came back).
    const passed = statuses.filter((s) => s === 200).length
    expect(passed).toBeGreaterThanOrEqual(40)
    expect(passed).toBeLessThan(75)
    expect(statuses.at(-1)).toBe(429)
  })
})

describe('per-address rate limit on the auth routes', () => {
  const ctx = useApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3' }, { clock: clockStoppedInAMinute() })

  it('limits the unauthenticated auth routes per client address', async () => {
    // An address of its own, so earlier runs within the minute do not count.
    const remoteAddress = `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`
    const login = () => ctx.app.inject({ method: 'POST', url: '/v1/auth/login', remoteAddress, payload: { email: uniqueEmail(), password: 'whatever-password' } })
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await login()).statusCode)
    expect(statuses).toEqual([401, 401, 401, 429])
    expect((await login()).headers['retry-after']).toBeDefined()
  })
})
