import { request as httpRequest } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import type { AccessTokenClaims } from '../../src/modules/auth/tokens.js'
import { EVENT_BLOCK_MS } from '../../src/modules/events/reader.js'
import { keys } from '../../src/redis/keys.js'
import { call, expectProblem, PASSWORD, signup, useApp, type Org } from '../helpers.js'

/*
 * Issue 13, item 15: logout (or a revocation for refresh-token reuse) ends the session's access tokens on
 * the next request in every process, and its open event streams, not when the tokens expire.
 */
// Two API instances sharing Postgres and Redis, as two processes behind a load balancer would.
const a = useApp()
const b = useApp()
const bases = new Map<FastifyInstance, string>()
beforeAll(async () => {
  for (const app of [a.app, b.app]) {
    await app.listen({ port: 0, host: '127.0.0.1' })
    bases.set(app, `http://127.0.0.1:${(app.server.address() as { port: number }).port}`)
  }
})

const services = (app: FastifyInstance, token: string) => call(app, token, { method: 'GET', url: '/v1/services' })
const login = async (app: FastifyInstance, org: Org) => {
  const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: org.email, password: PASSWORD } })
  expect(res.statusCode, res.body).toBe(200)
  return res.json() as { accessToken: string; refreshToken: string }
}
const logout = (app: FastifyInstance, refreshToken: string) => app.inject({ method: 'POST', url: '/v1/auth/logout', payload: { refreshToken } })
const sessionOf = (token: string) => a.app.jwt.decode<AccessTokenClaims>(token)!.sid

/** Both processes accept the token and hold its session in memory (b provably answers without Redis). */
async function acceptedAndCached(token: string) {
  await vi.waitFor(() => expect(b.app.invalidation.isFresh() && a.app.invalidation.isFresh()).toBe(true))
  expect((await services(a.app, token)).statusCode).toBe(200)
  expect((await services(b.app, token)).statusCode).toBe(200)
  // A tombstone written behind b's back does not reach it: b serves the session from its own cache.
  const tombstone = keys.revokedSession(sessionOf(token))
  await b.app.redis.set(tombstone, '1', 'EX', 60)
  expect((await services(b.app, token)).statusCode).toBe(200)
  await b.app.redis.del(tombstone)
}

/** An SSE connection over a real port that records its comments and whether it ended. */
function openStream(app: FastifyInstance, token: string) {
  const stream = { status: 0, comments: [] as string[], ended: false, endedAt: 0, close: () => req.destroy() }
  const ended = () => {
    if (!stream.ended) stream.endedAt = performance.now()
    stream.ended = true
  }
  const req = httpRequest(`${bases.get(app)}/v1/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
    stream.status = res.statusCode ?? 0
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.startsWith(': ')) stream.comments.push(line.slice(2))
    })
    res.on('end', ended)
  })
  req.on('error', ended)
  req.end()
  return stream
}

describe('logout', () => {
  it("the session's access token answers 401 on the next request, in this process and in another that had it in memory", async () => {
    const org = await signup(a.app)
    const other = await login(a.app, org)
    await acceptedAndCached(org.token)
    await acceptedAndCached(other.accessToken)

    expect((await logout(a.app, org.refreshToken)).statusCode).toBe(204)
    expectProblem(await services(a.app, org.token), 401, 'unauthorized')
    expectProblem(await services(b.app, org.token), 401, 'unauthorized')
    expectProblem(await call(b.app, org.token, { method: 'GET', url: '/v1/me' }), 401, 'unauthorized')
    // Tombstoned for as long as one of the session's access tokens can live.
    const ttl = await a.app.redis.ttl(keys.revokedSession(sessionOf(org.token)))
    expect(ttl).toBeGreaterThan(a.config.jwt.accessTtlSeconds - 10)
    expect(ttl).toBeLessThanOrEqual(a.config.jwt.accessTtlSeconds)

    // The user's other session keeps working in both processes.
    expect((await services(a.app, other.accessToken)).statusCode).toBe(200)
    expect((await services(b.app, other.accessToken)).statusCode).toBe(200)
  })

  it('a logout through the other process, repeated, ends the tokens there too', async () => {
    const org = await signup(a.app)
    await acceptedAndCached(org.token)
    expect((await logout(b.app, org.refreshToken)).statusCode).toBe(204)
    expectProblem(await services(a.app, org.token), 401, 'unauthorized')
    // A repeated logout (a retry after a 503) announces the revocation again and still answers 204.
    await a.app.redis.del(keys.revokedSession(sessionOf(org.token)))
    expect((await logout(a.app, org.refreshToken)).statusCode).toBe(204)
    expect(await a.app.redis.exists(keys.revokedSession(sessionOf(org.token)))).toBe(1)
    expectProblem(await services(b.app, org.token), 401, 'unauthorized')
  })

  it("ends the session's open event streams in every process within the route's re-check interval; other sessions' stay open", async () => {
    const org = await signup(a.app)
    const other = await login(a.app, org)
    const streams = [openStream(a.app, org.token), openStream(b.app, org.token)]
    const untouched = openStream(b.app, other.accessToken)
    await new Promise((resolve) => setTimeout(resolve, 500))
    for (const stream of [...streams, untouched]) {
      expect(stream.status).toBe(200)
      expect(stream.ended).toBe(false)
    }

    expect((await logout(a.app, org.refreshToken)).statusCode).toBe(204)
    const loggedOut = performance.now()
    await vi.waitFor(() => expect(streams.every((s) => s.ended)).toBe(true), { timeout: EVENT_BLOCK_MS + 3000, interval: 50 })
    for (const stream of streams) {
      expect(stream.endedAt - loggedOut).toBeLessThan(EVENT_BLOCK_MS + 1000)
      expect(stream.comments).toContain('credential revoked or expired')
    }
    // Its reconnect is refused.
    expectProblem(await call(b.app, org.token, { method: 'GET', url: '/v1/events' }), 401, 'unauthorized')
    expect(untouched.ended).toBe(false)
    untouched.close()
  })
})

describe('refresh-token reuse', () => {
  it("revoking the session for a replayed refresh token also ends its access tokens in every process", async () => {
    const org = await signup(a.app)
    const first = await login(a.app, org)
    const refreshed = await a.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: first.refreshToken } })
    expect(refreshed.statusCode, refreshed.body).toBe(200)
    const second = refreshed.json() as { accessToken: string }
    await acceptedAndCached(second.accessToken)
    const stream = openStream(b.app, second.accessToken)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(stream.status).toBe(200)

    // The rotated-away token shown again: a stolen copy, so the whole session goes.
    expectProblem(await b.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: first.refreshToken } }), 401, 'unauthorized')
    for (const app of [a.app, b.app]) {
      expectProblem(await services(app, second.accessToken), 401, 'unauthorized')
      expectProblem(await services(app, first.accessToken), 401, 'unauthorized')
    }
    await vi.waitFor(() => expect(stream.ended).toBe(true), { timeout: EVENT_BLOCK_MS + 3000, interval: 50 })

    // The signup's session is another one, and keeps working.
    expect((await services(a.app, org.token)).statusCode).toBe(200)
    expect((await services(b.app, org.token)).statusCode).toBe(200)
  })
})
