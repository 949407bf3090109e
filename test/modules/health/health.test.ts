import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { call, expectProblem, signup, useApp } from '../../helpers.js'

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}
const port = await closedPort()

describe('health with every dependency up', () => {
  const ctx = useApp()
  it('live and ready answer 200', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/health/live' })).json()).toEqual({ status: 'ok' })
    const ready = await ctx.app.inject({ method: 'GET', url: '/health/ready' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toEqual({ status: 'ok', checks: { postgres: 'ok', redis: 'ok', queue: 'ok' } })
  })
})

describe('health with the state Redis down', () => {
  const ctx = useApp({ REDIS_URL: `redis://127.0.0.1:${port}/0`, QUEUE_REDIS_URL: 'redis://127.0.0.1:6379/1' })
  it('ready is 503 degraded, and Postgres-backed reads keep working', async () => {
    const started = Date.now()
    const ready = await ctx.app.inject({ method: 'GET', url: '/health/ready' })
    expect(ready.statusCode).toBe(503)
    expect(ready.json()).toMatchObject({ status: 'degraded', checks: { postgres: 'ok', redis: 'down', queue: 'ok' } })
    expect(Date.now() - started).toBeLessThan(3000)

    const org = await signup(ctx.app)
    const services = await call(ctx.app, org.token, { method: 'GET', url: '/v1/services' })
    expect(services.statusCode).toBe(200)
  })
})

describe('health with Postgres down', () => {
  const ctx = useApp({ DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/autopilot_test` })
  it('ready is 503 down', async () => {
    const ready = await ctx.app.inject({ method: 'GET', url: '/health/ready' })
    expect(ready.statusCode).toBe(503)
    expect(ready.json()).toMatchObject({ status: 'down', checks: { postgres: 'down', redis: 'ok', queue: 'ok' } })
    expect((await ctx.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200)
  })

  it('requests that need Postgres answer 503 unavailable with Retry-After, not 500', async () => {
    const login = await ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'a@example.test', password: 'whatever-password' } })
    expectProblem(login, 503, 'unavailable')
    expect(login.headers['retry-after']).toBeDefined()
  })
})
