import { describe, expect, it } from 'vitest'
import { auditActions, call, expectProblem, PASSWORD, signup, uniqueEmail, useApp } from '../../helpers.js'

const ctx = useApp()

describe('auth', () => {
  it('signs up an owner on the free plan and never returns a password hash', async () => {
    const email = uniqueEmail()
    const res = await ctx.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: PASSWORD, organization: 'Initech' } })
    expect(res.statusCode).toBe(201)
    const body = res.json()
    expect(body.user).toMatchObject({ email, role: 'owner' })
    expect(body.organization).toMatchObject({ name: 'Initech', plan: 'free' })
    expect(body.expiresIn).toBe(900)
    expect(res.body).not.toMatch(/scrypt|passwordHash|password_hash/)

    const again = await ctx.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: email.toUpperCase(), password: PASSWORD, organization: 'Dup' } })
    expectProblem(again, 409, 'conflict')
  })

  it('rejects short passwords', async () => {
    const res = await ctx.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: uniqueEmail(), password: 'short', organization: 'X' } })
    const problem = expectProblem(res, 400, 'validation_failed')
    expect(problem.errors?.[0]?.path).toBe('/body/password')
  })

  it('answers the same 401 for an unknown email and a wrong password', async () => {
    const org = await signup(ctx.app)
    const wrongPassword = await ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: org.email, password: 'not the password at all' } })
    const unknownEmail = await ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: uniqueEmail(), password: PASSWORD } })
    expectProblem(wrongPassword, 401, 'unauthorized')
    expectProblem(unknownEmail, 401, 'unauthorized')
    const strip = (body: string) => ({ ...JSON.parse(body), requestId: undefined })
    expect(strip(wrongPassword.body)).toEqual(strip(unknownEmail.body))
  })

  it('signup → login → refresh → reuse of the old refresh token revokes the session', async () => {
    const org = await signup(ctx.app)
    const login = await ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: org.email, password: PASSWORD } })
    expect(login.statusCode).toBe(200)
    const first = login.json()

    const me = await call(ctx.app, first.accessToken, { method: 'GET', url: '/v1/me' })
    expect(me.statusCode).toBe(200)
    expect(me.json()).toMatchObject({ role: 'owner', plan: 'free', apiKey: null, limits: { maxServices: 5, autoRemediation: false } })

    const refreshed = await ctx.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: first.refreshToken } })
    expect(refreshed.statusCode).toBe(200)
    const second = refreshed.json()
    expect(second.refreshToken).not.toBe(first.refreshToken)
    expect((await call(ctx.app, second.accessToken, { method: 'GET', url: '/v1/me' })).statusCode).toBe(200)

    // The old token again: reuse → 401, and the whole session is revoked (the newest token dies too).
    const reuse = await ctx.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: first.refreshToken } })
    expectProblem(reuse, 401, 'unauthorized')
    const afterRevocation = await ctx.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: second.refreshToken } })
    expectProblem(afterRevocation, 401, 'unauthorized')

    // Other sessions of the user are untouched.
    const other = await ctx.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: org.refreshToken } })
    expect(other.statusCode).toBe(200)

    const audit = await auditActions(ctx.app, { ...org, token: other.json().accessToken }, '&resourceType=session')
    const revoked = audit.find((entry) => entry.action === 'session.revoked')
    expect(revoked?.after).toEqual({ reason: 'refresh_token_reuse' })
  })

  it("a session's id with a made-up secret is refused and does not end the session (only a replayed former token does)", async () => {
    const org = await signup(ctx.app)
    const sessionId = org.refreshToken.split('.')[0]
    const forged = await ctx.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: `${sessionId}.x` } })
    expectProblem(forged, 401, 'unauthorized')
    const still = await ctx.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: org.refreshToken } })
    expect(still.statusCode, still.body).toBe(200)
  })

  it('concurrent refreshes with one token: exactly one succeeds', async () => {
    const org = await signup(ctx.app)
    const results = await Promise.all(
      Array.from({ length: 5 }, () => ctx.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: org.refreshToken } }))
    )
    expect(results.filter((r) => r.statusCode === 200)).toHaveLength(1)
    expect(results.filter((r) => r.statusCode === 401)).toHaveLength(4)
  })

  it('logout revokes the session; garbage refresh tokens are 401', async () => {
    const org = await signup(ctx.app)
    // The audit log is read through another session: the logged-out one's access token ends with it.
    const other = await ctx.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: org.email, password: PASSWORD } })
    const out = await ctx.app.inject({ method: 'POST', url: '/v1/auth/logout', payload: { refreshToken: org.refreshToken } })
    expect(out.statusCode).toBe(204)
    const refresh = await ctx.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: org.refreshToken } })
    expectProblem(refresh, 401, 'unauthorized')
    for (const refreshToken of ['nonsense', 'a.b', `${crypto.randomUUID()}.secret`]) {
      expectProblem(await ctx.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken } }), 401, 'unauthorized')
    }
    const sid = ctx.app.jwt.decode<{ sid: string }>(org.token)!.sid
    const audit = await auditActions(ctx.app, { ...org, token: other.json().accessToken }, `&resourceType=session&resourceId=${sid}`)
    expect(audit.map((entry) => entry.action)).toEqual(['session.revoked', 'session.created'])
  })
})
