import { beforeAll, describe, expect, it } from 'vitest'
import { call, createService, expectProblem, signup, useApp, userWithRole, type Org } from '../../helpers.js'
import { openIncident } from '../../fixtures.js'

const ctx = useApp()

describe('incident lifecycle', () => {
  let org: Org
  let operator: string
  let serviceId: string
  beforeAll(async () => {
    org = await signup(ctx.app)
    operator = await userWithRole(ctx.app, org, 'operator')
    serviceId = (await createService(ctx.app, org, 'payments')).id
  })

  it('open → acknowledged → resolved; repeating either step is 409 invalid_transition; all audited', async () => {
    const incident = await openIncident(ctx.app, org, serviceId)
    const url = `/v1/incidents/${incident.id}`

    const ack = await call(ctx.app, operator, { method: 'POST', url: `${url}/acknowledge` })
    expect(ack.statusCode).toBe(200)
    expect(ack.json()).toMatchObject({ status: 'acknowledged', service: 'payments', acknowledgedAt: expect.any(String) })
    expectProblem(await call(ctx.app, operator, { method: 'POST', url: `${url}/acknowledge` }), 409, 'invalid_transition')

    const resolved = await call(ctx.app, operator, { method: 'POST', url: `${url}/resolve`, payload: { note: 'rolled back' } })
    expect(resolved.statusCode).toBe(200)
    const body = resolved.json()
    expect(body).toMatchObject({ status: 'resolved', resolutionNote: 'rolled back', resolvedAt: expect.any(String) })
    expect(body.resolvedBy).toMatch(/^[0-9a-f-]{36}$/)
    expectProblem(await call(ctx.app, operator, { method: 'POST', url: `${url}/resolve`, payload: {} }), 409, 'invalid_transition')
    expectProblem(await call(ctx.app, operator, { method: 'POST', url: `${url}/acknowledge` }), 409, 'invalid_transition')

    const detail = (await call(ctx.app, org.token, { method: 'GET', url })).json()
    expect(detail.timeline.map((e: { action: string }) => e.action)).toEqual(['incident.acknowledged', 'incident.resolved'])
    expect(detail.timeline[1]).toMatchObject({ before: { status: 'acknowledged' }, after: { status: 'resolved' }, actor: { type: 'user', id: body.resolvedBy } })
    expect(detail.actions).toEqual([])
  })

  it('resolves an open incident directly, without a body', async () => {
    const incident = await openIncident(ctx.app, org, (await createService(ctx.app, org)).id)
    const res = await call(ctx.app, operator, { method: 'POST', url: `/v1/incidents/${incident.id}/resolve` })
    expect(res.statusCode, res.body).toBe(200)
  })

  it('concurrent acknowledgements: one wins, the rest get 409', async () => {
    const incident = await openIncident(ctx.app, org, (await createService(ctx.app, org)).id)
    const results = await Promise.all(
      Array.from({ length: 6 }, () => call(ctx.app, operator, { method: 'POST', url: `/v1/incidents/${incident.id}/acknowledge` }))
    )
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409, 409, 409, 409, 409])
  })

  it('lists filter by status and service', async () => {
    const list = async (query: string) =>
      (await call(ctx.app, org.token, { method: 'GET', url: `/v1/incidents?${query}` })).json().items as { status: string; service: string }[]
    const open = await list('status=open')
    expect(open.every((i) => i.status === 'open')).toBe(true)
    const byName = await list('service=payments')
    expect(byName.length).toBeGreaterThan(0)
    expect(byName.every((i) => i.service === 'payments')).toBe(true)
    expect(await list(`service=${serviceId}`)).toEqual(byName)
  })

  it('lists filter by severity and flapping, alone and with the other filters', async () => {
    const other = await signup(ctx.app)
    const a = await createService(ctx.app, other, 'filtered-a')
    const b = await createService(ctx.app, other, 'filtered-b')
    const critical = await openIncident(ctx.app, other, a.id, { severity: 'critical', flapping: true })
    const warning = await openIncident(ctx.app, other, b.id, { severity: 'warning' })
    const resolved = await openIncident(ctx.app, other, b.id, { severity: 'critical', status: 'resolved', resolvedAt: new Date() })
    const ids = async (query: string) => {
      const res = await call(ctx.app, other.token, { method: 'GET', url: `/v1/incidents?${query}` })
      expect(res.statusCode, res.body).toBe(200)
      return (res.json().items as { id: string }[]).map((i) => i.id).sort()
    }
    expect(await ids('severity=critical')).toEqual([critical.id, resolved.id].sort())
    expect(await ids('severity=warning')).toEqual([warning.id])
    expect(await ids('flapping=true')).toEqual([critical.id])
    expect(await ids('flapping=false')).toEqual([warning.id, resolved.id].sort())
    expect(await ids('severity=critical&status=resolved')).toEqual([resolved.id])
    expect(await ids('severity=critical&service=filtered-a&flapping=true')).toEqual([critical.id])
    expectProblem(await call(ctx.app, other.token, { method: 'GET', url: '/v1/incidents?severity=loud' }), 400, 'validation_failed')
    expectProblem(await call(ctx.app, other.token, { method: 'GET', url: '/v1/incidents?flapping=maybe' }), 400, 'validation_failed')
  })

  it('the database allows one open detector incident per service', async () => {
    const other = (await createService(ctx.app, org)).id
    await openIncident(ctx.app, org, other)
    await expect(openIncident(ctx.app, org, other)).rejects.toThrow()
  })
})
