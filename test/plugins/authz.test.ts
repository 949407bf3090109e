import { createHmac, randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Role } from '../../src/db/schema/index.js'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { apiKey, auditActions, call, expectProblem, signup, testConfig, useApp, userWithRole, type Org } from '../helpers.js'

const ctx = useApp()

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
function jwt(header: object, payload: object, secret: string | null) {
  const unsigned = `${b64(header)}.${b64(payload)}`
  const signature = secret === null ? '' : createHmac('sha256', secret).update(unsigned).digest('base64url')
  return `${unsigned}.${signature}`
}

// Every route with the lowest role allowed on it (ids need not exist: the role check comes first).
const id = randomUUID()
const ROUTES: { method: string; url: string; minRole: Role }[] = [
  { method: 'GET', url: '/v1/me', minRole: 'agent' },
  { method: 'GET', url: '/v1/services', minRole: 'agent' },
  { method: 'GET', url: `/v1/services/${id}`, minRole: 'agent' },
  { method: 'GET', url: '/v1/incidents', minRole: 'agent' },
  { method: 'GET', url: `/v1/incidents/${id}`, minRole: 'agent' },
  { method: 'GET', url: '/v1/suppression-rules', minRole: 'agent' },
  { method: 'GET', url: '/v1/subscription', minRole: 'agent' },
  { method: 'GET', url: `/v1/services/${id}/baselines`, minRole: 'agent' },
  { method: 'GET', url: `/v1/services/${id}/anomalies`, minRole: 'agent' },
  { method: 'POST', url: '/v1/metrics', minRole: 'agent' },
  { method: 'POST', url: '/v1/alerts', minRole: 'agent' },
  { method: 'POST', url: '/v1/suppression-rules/preview', minRole: 'operator' },
  { method: 'POST', url: `/v1/incidents/${id}/acknowledge`, minRole: 'operator' },
  { method: 'POST', url: `/v1/incidents/${id}/resolve`, minRole: 'operator' },
  { method: 'POST', url: '/v1/suppression-rules', minRole: 'operator' },
  { method: 'DELETE', url: `/v1/suppression-rules/${id}`, minRole: 'operator' },
  { method: 'POST', url: '/v1/services', minRole: 'admin' },
  { method: 'PATCH', url: `/v1/services/${id}`, minRole: 'admin' },
  { method: 'DELETE', url: `/v1/services/${id}`, minRole: 'admin' },
  { method: 'POST', url: '/v1/users', minRole: 'admin' },
  { method: 'GET', url: '/v1/users', minRole: 'admin' },
  { method: 'POST', url: '/v1/api-keys', minRole: 'admin' },
  { method: 'GET', url: '/v1/api-keys', minRole: 'admin' },
  { method: 'DELETE', url: `/v1/api-keys/${id}`, minRole: 'admin' },
  { method: 'GET', url: '/v1/audit', minRole: 'admin' },
  { method: 'PUT', url: '/v1/subscription', minRole: 'owner' },
  { method: 'GET', url: '/v1/actions', minRole: 'agent' },
  { method: 'GET', url: `/v1/actions/${id}`, minRole: 'agent' },
  { method: 'POST', url: `/v1/incidents/${id}/actions`, minRole: 'operator' },
  { method: 'POST', url: `/v1/actions/${id}/approve`, minRole: 'operator' },
  { method: 'POST', url: `/v1/actions/${id}/reject`, minRole: 'operator' },
  { method: 'POST', url: `/v1/services/${id}/runbooks`, minRole: 'admin' },
  { method: 'GET', url: `/v1/services/${id}/runbooks`, minRole: 'admin' },
  { method: 'GET', url: `/v1/services/${id}/runbooks/${id}`, minRole: 'admin' },
  { method: 'DELETE', url: `/v1/services/${id}/runbooks/${id}`, minRole: 'admin' },
  { method: 'GET', url: '/v1/webhook-secret', minRole: 'admin' },
  { method: 'GET', url: '/v1/integrations/prometheus/settings', minRole: 'agent' },
  { method: 'PUT', url: '/v1/integrations/prometheus/settings', minRole: 'admin' },
  { method: 'POST', url: '/v1/integrations/alertmanager', minRole: 'agent' }
]
const RANK: Role[] = ['agent', 'operator', 'admin', 'owner']

describe('authentication and roles', () => {
  let org: Org
  const tokens = {} as Record<Role, string>
  let agentKey: string

  beforeAll(async () => {
    org = await signup(ctx.app)
    tokens.owner = org.token
    for (const role of ['agent', 'operator', 'admin'] as const) tokens[role] = await userWithRole(ctx.app, org, role)
    agentKey = (await apiKey(ctx.app, org, 'agent')).key
  })

  it('every route refuses each role below its own with 403 and lets its own role through', async () => {
    for (const route of ROUTES) {
      for (const role of RANK) {
        const res = await call(ctx.app, tokens[role], { method: route.method as 'GET', url: route.url, payload: route.method === 'GET' ? undefined : {} })
        if (RANK.indexOf(role) < RANK.indexOf(route.minRole)) {
          expectProblem(res, 403, 'forbidden')
        } else {
          expect([200, 400, 404, 410], `${role} ${route.method} ${route.url}: ${res.body}`).toContain(res.statusCode)
        }
      }
    }
  })

  it("the queue dashboard, shared by every tenant, answers the operating organization's admins only", async () => {
    const get = (app: FastifyInstance, token?: string) => call(app, token, { method: 'GET', url: '/admin/queues/api/queues' })
    // Without an operating organization configured it does not exist.
    expect((await get(ctx.app, tokens.admin)).statusCode).toBe(404)

    const operated = await buildApp(testConfig({ QUEUE_DASHBOARD_ORGANIZATION_ID: org.organizationId }), { logger: false })
    try {
      expectProblem(await get(operated), 401, 'unauthorized')
      expectProblem(await get(operated, tokens.operator), 403, 'forbidden')
      const stranger = await signup(ctx.app) // the owner of another organization
      expectProblem(await get(operated, stranger.token), 403, 'forbidden')
      const ok = await get(operated, tokens.admin)
      expect(ok.statusCode).toBe(200)
      expect(ok.json().queues.map((q: { name: string }) => q.name).sort()).toEqual(['actions', 'maintenance', 'timers'])
    } finally {
      await operated.close()
    }
  })

  it('an agent API key can read but not change', async () => {
    expect((await call(ctx.app, agentKey, { method: 'GET', url: '/v1/services' })).statusCode).toBe(200)
    const me = await call(ctx.app, agentKey, { method: 'GET', url: '/v1/me' })
    expect(me.json()).toMatchObject({ user: null, role: 'agent', apiKey: { name: 'agent key', role: 'agent' } })
    expectProblem(await call(ctx.app, agentKey, { method: 'POST', url: '/v1/services', payload: { name: 'nope' } }), 403, 'forbidden')
  })

  it('nobody creates a user or key with a role above their own', async () => {
    const asAdmin = (url: string, payload: object) => call(ctx.app, tokens.admin, { method: 'POST', url, payload })
    expectProblem(await asAdmin('/v1/users', { email: `x-${id}@example.test`, password: 'long enough password', role: 'owner' }), 403, 'forbidden')
    expectProblem(await asAdmin('/v1/api-keys', { name: 'k', role: 'owner' }), 403, 'forbidden')
    expect((await asAdmin('/v1/api-keys', { name: 'k', role: 'admin' })).statusCode).toBe(201)
  })

  it('401 without a credential or with a bad one', async () => {
    const me = (authorization?: string) => ctx.app.inject({ method: 'GET', url: '/v1/me', headers: authorization ? { authorization } : {} })
    expectProblem(await me(), 401, 'unauthorized')
    expectProblem(await me('Basic abc'), 401, 'unauthorized')
    expectProblem(await me('Bearer dap_not-a-real-key'), 401, 'unauthorized')
    expectProblem(await me('Bearer not.a.jwt'), 401, 'unauthorized')

    const now = Math.floor(Date.now() / 1000)
    const sid = ctx.app.jwt.decode<{ sid: string }>(org.token)!.sid // a live session: a token's session is checked too
    const claims = { sub: org.ownerId, org: org.organizationId, role: 'owner', sid, iss: 'autopilot', aud: 'autopilot-api' }
    const secret = ctx.config.jwt.secret
    const hs256 = { alg: 'HS256', typ: 'JWT' }
    // Control: a hand-made token with the right secret and claims is accepted, so the refusals below are meaningful.
    expect((await me(`Bearer ${jwt(hs256, { ...claims, iat: now, exp: now + 60 }, secret)}`)).statusCode).toBe(200)

    expectProblem(await me(`Bearer ${jwt(hs256, { ...claims, iat: now - 120, exp: now - 60 }, secret)}`), 401, 'unauthorized')
    expectProblem(await me(`Bearer ${jwt(hs256, { ...claims, iat: now, exp: now + 60 }, 'another-secret-another-secret-123456')}`), 401, 'unauthorized')
    expectProblem(await me(`Bearer ${jwt({ alg: 'none', typ: 'JWT' }, { ...claims, iat: now, exp: now + 60 }, null)}`), 401, 'unauthorized')
    expectProblem(await me(`Bearer ${jwt(hs256, { ...claims, aud: 'someone-else', iat: now, exp: now + 60 }, secret)}`), 401, 'unauthorized')
    expectProblem(await me(`Bearer ${jwt({ alg: 'HS512', typ: 'JWT' }, { ...claims, iat: now, exp: now + 60 }, secret)}`), 401, 'unauthorized')
  })

  it('a revoked API key answers 401 on the very next request, although it was cached', async () => {
    const key = await apiKey(ctx.app, org, 'agent')
    expect((await call(ctx.app, key.key, { method: 'GET', url: '/v1/services' })).statusCode).toBe(200)
    expect(await ctx.app.redis.exists(`auth:apikey:${(await import('../../src/lib/crypto.js')).sha256(key.key)}`)).toBe(1)

    const listed = await call(ctx.app, org.token, { method: 'GET', url: '/v1/api-keys' })
    expect(listed.body).not.toContain(key.key)
    expect(listed.json().items.find((k: { id: string }) => k.id === key.id)).toMatchObject({ revokedAt: null })

    expect((await call(ctx.app, org.token, { method: 'DELETE', url: `/v1/api-keys/${key.id}` })).statusCode).toBe(204)
    expectProblem(await call(ctx.app, key.key, { method: 'GET', url: '/v1/services' }), 401, 'unauthorized')
    // Revoking again is harmless (a retry after a failed cache write).
    expect((await call(ctx.app, org.token, { method: 'DELETE', url: `/v1/api-keys/${key.id}` })).statusCode).toBe(204)

    const audit = await auditActions(ctx.app, org, `&resourceType=api_key&resourceId=${key.id}`)
    expect(audit.map((e) => e.action)).toEqual(['api_key.revoked', 'api_key.created'])
    expect(audit[0]).toMatchObject({ before: { revokedAt: null }, after: { revokedAt: expect.any(String) } })
    expect(JSON.stringify(audit)).not.toContain(key.key)
  })

  it('user creation is audited without the password hash', async () => {
    const audit = await auditActions(ctx.app, org, '&resourceType=user')
    expect(audit.map((e) => e.action)).toEqual(['user.created', 'user.created', 'user.created', 'user.created'])
    expect(JSON.stringify(audit)).not.toMatch(/scrypt|password/i)
  })
})
