import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { describe, expect, it } from 'vitest'
import { buildApp } from '../../../src/app.js'
import { call, expectProblem, PASSWORD, signup, testConfig, useApp, userWithRole, type Org } from '../../helpers.js'

/** A browser's cookie jar, as far as these tests need one: name → value, updated from Set-Cookie. */
class Jar {
  readonly cookies = new Map<string, string>()
  take(res: LightMyRequestResponse) {
    for (const cookie of res.cookies as { name: string; value: string; maxAge?: number; expires?: Date }[]) {
      const expired = cookie.maxAge === 0 || (cookie.expires !== undefined && cookie.expires.getTime() <= Date.now())
      if (expired || cookie.value === '') this.cookies.delete(cookie.name)
      else this.cookies.set(cookie.name, cookie.value)
    }
    return res
  }
  get header() {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }
}

/** A signed-in console: its cookie jar and CSRF token. */
async function signIn(app: FastifyInstance, email: string, password = PASSWORD) {
  const jar = new Jar()
  const session = jar.take(await app.inject({ method: 'GET', url: '/v1/auth/session' }))
  expect(session.json()).toMatchObject({ me: null, queueDashboard: false, renewable: false })
  const login = jar.take(
    await app.inject({
      method: 'POST',
      url: '/v1/auth/session',
      headers: { cookie: jar.header, 'x-csrf-token': session.json().csrfToken },
      payload: { email, password }
    })
  )
  expect(login.statusCode, login.body).toBe(200)
  return { jar, csrf: login.json().csrfToken as string, login }
}

const browse = (app: FastifyInstance, jar: Jar, method: 'GET' | 'POST' | 'DELETE', url: string, extra: { csrf?: string; payload?: object } = {}) =>
  app
    .inject({
      method,
      url,
      headers: { cookie: jar.header, ...(extra.csrf ? { 'x-csrf-token': extra.csrf } : {}) },
      ...(extra.payload ? { payload: extra.payload } : {})
    })
    .then((res) => jar.take(res))

const RULE = { service: 'checkout', startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(), reason: 'deploy' }

describe('console cookie session', () => {
  const ctx = useApp()

  it('signs in into httpOnly SameSite=Strict cookies, the refresh token only sent to the session routes', async () => {
    const org = await signup(ctx.app)
    const { login, jar } = await signIn(ctx.app, org.email)
    expect(login.json().me).toMatchObject({ user: { email: org.email }, role: 'owner', organization: { id: org.organizationId } })
    const cookies = Object.fromEntries((login.cookies as { name: string }[]).map((c) => [c.name, c]))
    expect(cookies.autopilot_session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' })
    expect(cookies.autopilot_refresh).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/v1/auth/session' })
    // Over plain HTTP no Secure flag (the browser would drop the cookie); over TLS it is set (see below).
    expect(cookies.autopilot_session).not.toHaveProperty('secure', true)
    expect(jar.cookies.has('autopilot_csrf')).toBe(true)

    const me = await browse(ctx.app, jar, 'GET', '/v1/me')
    expect(me.statusCode, me.body).toBe(200)
    expect(me.json().user.email).toBe(org.email)
    const again = await browse(ctx.app, jar, 'GET', '/v1/auth/session')
    expect(again.json()).toMatchObject({ me: { user: { email: org.email } }, csrfToken: expect.any(String), renewable: true })
    // The access cookie gone (it lives 15 minutes), the refresh cookie still there: the console may renew.
    const expired = await ctx.app.inject({
      method: 'GET',
      url: '/v1/auth/session',
      headers: { cookie: `autopilot_refresh=${jar.cookies.get('autopilot_refresh')}` }
    })
    expect(expired.json()).toMatchObject({ me: null, renewable: true })
  })

  it('refuses a wrong password, and a sign-in without the CSRF token', async () => {
    const org = await signup(ctx.app)
    const jar = new Jar()
    const session = jar.take(await ctx.app.inject({ method: 'GET', url: '/v1/auth/session' }))
    const attempt = (headers: Record<string, string>, password = PASSWORD) =>
      ctx.app.inject({ method: 'POST', url: '/v1/auth/session', headers, payload: { email: org.email, password } })
    expectProblem(await attempt({ cookie: jar.header }), 403, 'csrf_failed')
    expectProblem(await attempt({ cookie: jar.header, 'x-csrf-token': 'forged' }), 403, 'csrf_failed')
    // A token without its secret cookie (another browser's) does not pass either.
    expectProblem(await attempt({ 'x-csrf-token': session.json().csrfToken }), 403, 'csrf_failed')
    const wrong = await attempt({ cookie: jar.header, 'x-csrf-token': session.json().csrfToken }, 'not the password')
    expectProblem(wrong, 401, 'unauthorized')
    expect(wrong.cookies).toEqual([])
  })

  it('a cookie-signed request that changes something needs the CSRF token; without it nothing changes', async () => {
    const org = await signup(ctx.app)
    const { jar, csrf } = await signIn(ctx.app, org.email)
    // What a forged cross-site form or fetch could send: the cookies, not the token.
    expectProblem(await browse(ctx.app, jar, 'POST', '/v1/suppression-rules', { payload: RULE }), 403, 'csrf_failed')
    expectProblem(await browse(ctx.app, jar, 'POST', '/v1/suppression-rules', { payload: RULE, csrf: 'made-up' }), 403, 'csrf_failed')
    const listed = await call(ctx.app, org.token, { method: 'GET', url: '/v1/suppression-rules' })
    expect(listed.json().items).toEqual([])

    const created = await browse(ctx.app, jar, 'POST', '/v1/suppression-rules', { payload: RULE, csrf })
    expect(created.statusCode, created.body).toBe(201)
    // A Bearer client (an agent, curl) is not asked for one.
    expect((await call(ctx.app, org.token, { method: 'POST', url: '/v1/suppression-rules', payload: RULE })).statusCode).toBe(201)
  })

  it('roles hold through the cookie as through a token', async () => {
    const org = await signup(ctx.app)
    await userWithRole(ctx.app, org, 'agent')
    const users = await call(ctx.app, org.token, { method: 'GET', url: '/v1/users' })
    const agent = (users.json().items as { email: string; role: string }[]).find((u) => u.role === 'agent')!
    const { jar, csrf } = await signIn(ctx.app, agent.email)
    expectProblem(await browse(ctx.app, jar, 'POST', '/v1/suppression-rules', { payload: RULE, csrf }), 403, 'forbidden')
  })

  it('refresh rotates the cookies; replaying a rotated refresh token ends the session', async () => {
    const org = await signup(ctx.app)
    const { jar, csrf } = await signIn(ctx.app, org.email)
    const stolen = jar.cookies.get('autopilot_refresh')!
    const refreshed = await browse(ctx.app, jar, 'POST', '/v1/auth/session/refresh', { csrf })
    expect(refreshed.statusCode, refreshed.body).toBe(200)
    expect(jar.cookies.get('autopilot_refresh')).not.toBe(stolen)
    expect((await browse(ctx.app, jar, 'GET', '/v1/me')).statusCode).toBe(200)

    // The old refresh token shown again (a stolen copy): refused, and the whole session is revoked.
    const thief = new Jar()
    thief.cookies.set('autopilot_csrf', jar.cookies.get('autopilot_csrf')!)
    thief.cookies.set('autopilot_refresh', stolen)
    expectProblem(await browse(ctx.app, thief, 'POST', '/v1/auth/session/refresh', { csrf }), 401, 'unauthorized')
    expectProblem(await browse(ctx.app, jar, 'GET', '/v1/me'), 401, 'unauthorized')
    expectProblem(await browse(ctx.app, jar, 'POST', '/v1/auth/session/refresh', { csrf }), 401, 'unauthorized')
    expect(jar.cookies.has('autopilot_session')).toBe(false)
  })

  it('sign-out ends the session: its cookies are cleared and the access token no longer works', async () => {
    const org = await signup(ctx.app)
    const { jar, csrf } = await signIn(ctx.app, org.email)
    const access = jar.cookies.get('autopilot_session')!
    expectProblem(await browse(ctx.app, jar, 'DELETE', '/v1/auth/session'), 403, 'csrf_failed')
    const out = await browse(ctx.app, jar, 'DELETE', '/v1/auth/session', { csrf })
    expect(out.statusCode, out.body).toBe(204)
    expect(jar.cookies.has('autopilot_session')).toBe(false)
    expect(jar.cookies.has('autopilot_refresh')).toBe(false)
    // The copy a browser might still hold is dead too: its session was revoked.
    const replay = await ctx.app.inject({ method: 'GET', url: '/v1/me', headers: { cookie: `autopilot_session=${access}` } })
    expectProblem(replay, 401, 'unauthorized')
    expect((await ctx.app.inject({ method: 'GET', url: '/v1/auth/session', headers: { cookie: `autopilot_session=${access}` } })).json().me).toBeNull()
  })
})

describe('console session behind TLS, and the queue dashboard through it', () => {
  let org: Org
  // (A hop count would not do: Fastify trusts X-Forwarded-Proto only from a proxy address it knows.)
  const ctx = useApp({ TRUST_PROXY: '127.0.0.1' })

  it('cookies are Secure when the request came over TLS', async () => {
    org = await signup(ctx.app)
    const jar = new Jar()
    const https = { 'x-forwarded-proto': 'https' }
    const session = jar.take(await ctx.app.inject({ method: 'GET', url: '/v1/auth/session', headers: https }))
    const login = await ctx.app.inject({
      method: 'POST',
      url: '/v1/auth/session',
      headers: { ...https, cookie: jar.header, 'x-csrf-token': session.json().csrfToken },
      payload: { email: org.email, password: PASSWORD }
    })
    expect(login.statusCode, login.body).toBe(200)
    for (const cookie of [...session.cookies, ...login.cookies] as { name: string; secure?: boolean }[]) {
      expect(cookie.secure, cookie.name).toBe(true)
    }
  })

  it("opens for the operating organization's admins by cookie; a cross-site change is refused", async () => {
    org ??= await signup(ctx.app)
    const operated = await buildApp(testConfig({ QUEUE_DASHBOARD_ORGANIZATION_ID: org.organizationId }), { logger: false })
    try {
      const { jar, login } = await signIn(operated, org.email)
      expect(login.json().queueDashboard).toBe(true)
      const page = await browse(operated, jar, 'GET', '/admin/queues/api/queues')
      expect(page.statusCode, page.body).toBe(200)
      const pause = (headers: Record<string, string>) =>
        operated.inject({ method: 'PUT', url: '/admin/queues/api/queues/timers/pause', headers: { cookie: jar.header, ...headers } })
      expectProblem(await pause({ 'sec-fetch-site': 'cross-site' }), 403, 'csrf_failed')
      expectProblem(await pause({ origin: 'https://evil.example' }), 403, 'csrf_failed')
      expectProblem(await pause({}), 403, 'csrf_failed')
      const stranger = await signup(ctx.app)
      const other = await signIn(operated, stranger.email)
      expect(other.login.json().queueDashboard).toBe(false)
      expectProblem(await browse(operated, other.jar, 'GET', '/admin/queues/api/queues'), 403, 'forbidden')
    } finally {
      await operated.close()
    }
  })
})
