import { beforeAll, describe, expect, it } from 'vitest'
import { apiKey, call, createService, expectProblem, signup, useApp, type Org } from './helpers.js'
import { openIncident } from './fixtures.js'

const ctx = useApp()

describe('tenant isolation', () => {
  let a: Org
  let b: Org
  const ids = {} as { service: string; incident: string; apiKey: string; rule: string }

  beforeAll(async () => {
    a = await signup(ctx.app, 'Tenant A')
    b = await signup(ctx.app, 'Tenant B')
    const service = await createService(ctx.app, a)
    ids.service = service.id
    ids.incident = (await openIncident(ctx.app, a, service.id)).id
    ids.apiKey = (await apiKey(ctx.app, a)).id
    const rule = await call(ctx.app, a.token, {
      method: 'POST',
      url: '/v1/suppression-rules',
      payload: { startsAt: Date.now(), endsAt: Date.now() + 3_600_000, reason: 'maintenance' }
    })
    ids.rule = rule.json().id
  })

  it("B gets 404 on every :id route of A, and A's rows are unchanged", async () => {
    const routes = [
      { method: 'GET', url: `/v1/services/${ids.service}` },
      { method: 'GET', url: `/v1/services/${ids.service}/baselines` },
      { method: 'GET', url: `/v1/services/${ids.service}/anomalies` },
      { method: 'PATCH', url: `/v1/services/${ids.service}`, payload: { description: 'hijacked' } },
      { method: 'DELETE', url: `/v1/services/${ids.service}` },
      { method: 'GET', url: `/v1/incidents/${ids.incident}` },
      { method: 'POST', url: `/v1/incidents/${ids.incident}/acknowledge` },
      { method: 'POST', url: `/v1/incidents/${ids.incident}/resolve`, payload: {} },
      { method: 'DELETE', url: `/v1/api-keys/${ids.apiKey}` },
      { method: 'DELETE', url: `/v1/suppression-rules/${ids.rule}` },
      { method: 'GET', url: `/v1/services/${ids.service}/runbooks` },
      { method: 'POST', url: `/v1/services/${ids.service}/runbooks`, payload: { name: 'x', match: {}, action: { type: 'dry_run', params: {} } } },
      { method: 'POST', url: `/v1/incidents/${ids.incident}/actions`, payload: { type: 'dry_run', params: {} } }
    ] as const
    for (const route of routes) {
      expectProblem(await call(ctx.app, b.token, route), 404, 'not_found')
    }
    const service = await call(ctx.app, a.token, { method: 'GET', url: `/v1/services/${ids.service}` })
    expect(service.json().description).toBeNull()
    const incident = await call(ctx.app, a.token, { method: 'GET', url: `/v1/incidents/${ids.incident}` })
    expect(incident.json().status).toBe('open')
    const rules = await call(ctx.app, a.token, { method: 'GET', url: '/v1/suppression-rules?active=true' })
    expect(rules.json().items.map((r: { id: string }) => r.id)).toContain(ids.rule)
  })

  it("A's lists never show B's rows", async () => {
    await createService(ctx.app, b)
    for (const url of ['/v1/services', '/v1/incidents', '/v1/api-keys', '/v1/suppression-rules', '/v1/users', '/v1/audit']) {
      const asB = await call(ctx.app, b.token, { method: 'GET', url })
      expect(asB.statusCode).toBe(200)
      const text = asB.body
      for (const id of Object.values(ids)) expect(text, url).not.toContain(id)
      expect(text).not.toContain(a.organizationId)
      expect(text).not.toContain(a.ownerId)
    }
    const incidents = await call(ctx.app, b.token, { method: 'GET', url: `/v1/incidents?service=${ids.service}` })
    expect(incidents.json().items).toEqual([])
  })
})
