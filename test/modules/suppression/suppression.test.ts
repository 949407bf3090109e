import { beforeAll, describe, expect, it } from 'vitest'
import { auditActions, call, expectProblem, signup, useApp, userWithRole, type Org } from '../../helpers.js'

const ctx = useApp()
const HOUR = 3_600_000

describe('suppression rules', () => {
  let org: Org
  let operator: string
  beforeAll(async () => {
    org = await signup(ctx.app)
    operator = await userWithRole(ctx.app, org, 'operator')
  })
  const create = (payload: object) => call(ctx.app, operator, { method: 'POST', url: '/v1/suppression-rules', payload })

  it('creates absolute and recurring rules, lists active ones, ends a rule on DELETE and keeps it', async () => {
    const now = Date.now()
    const absolute = await create({ service: 'checkout-*', metric: 'latency_*', maxSeverity: 'warning', startsAt: now - HOUR, endsAt: now + HOUR, reason: 'deploy window' })
    expect(absolute.statusCode, absolute.body).toBe(201)
    expect(absolute.json()).toMatchObject({ service: 'checkout-*', metric: 'latency_*', maxSeverity: 'warning', active: true, schedule: null })

    const weekly = await create({
      startsAt: new Date(now - HOUR).toISOString(),
      endsAt: new Date(now + 90 * 24 * HOUR).toISOString(),
      schedule: { weekdays: [6, 0], start: '22:00', end: '06:00', timezone: 'Europe/Paris' },
      reason: 'weekend batch jobs'
    })
    expect(weekly.statusCode, weekly.body).toBe(201)
    expect(weekly.json()).toMatchObject({ service: '*', metric: '*', schedule: { timezone: 'Europe/Paris' } })

    const future = await create({ startsAt: now + 24 * HOUR, endsAt: now + 48 * HOUR, reason: 'next week' })
    const ids = (res: { json: () => { items: { id: string }[] } }) => res.json().items.map((r) => r.id)
    const active = await call(ctx.app, org.token, { method: 'GET', url: '/v1/suppression-rules?active=true' })
    expect(ids(active)).toEqual([weekly.json().id, absolute.json().id])
    const inactive = await call(ctx.app, org.token, { method: 'GET', url: '/v1/suppression-rules?active=false' })
    expect(ids(inactive)).toEqual([future.json().id])

    expect((await call(ctx.app, operator, { method: 'DELETE', url: `/v1/suppression-rules/${absolute.json().id}` })).statusCode).toBe(204)
    expect((await call(ctx.app, operator, { method: 'DELETE', url: `/v1/suppression-rules/${future.json().id}` })).statusCode).toBe(204)
    const after = await call(ctx.app, org.token, { method: 'GET', url: '/v1/suppression-rules' })
    const all = after.json().items as { id: string; active: boolean; endedAt: string | null; startsAt: string; endsAt: string }[]
    expect(all).toHaveLength(3)
    const ended = all.find((r) => r.id === absolute.json().id)!
    expect(ended.active).toBe(false)
    expect(ended.endedAt).not.toBeNull()
    const neverStarted = all.find((r) => r.id === future.json().id)!
    expect(neverStarted.endsAt).toBe(neverStarted.startsAt)

    const audit = await auditActions(ctx.app, org, '&resourceType=suppression_rule')
    expect(audit.map((e) => e.action).sort()).toEqual([
      'suppression_rule.created',
      'suppression_rule.created',
      'suppression_rule.created',
      'suppression_rule.ended',
      'suppression_rule.ended'
    ])
  })

  it('rejects incoherent rules', async () => {
    const now = Date.now()
    const base = { startsAt: now, endsAt: now + HOUR, reason: 'x' }
    const cases: [object, string][] = [
      [{ ...base, reason: undefined }, '/body/reason'],
      [{ ...base, endsAt: now - HOUR }, '/body/endsAt'],
      [{ ...base, service: 'has space' }, '/body/service'],
      [{ ...base, maxSeverity: 'fatal' }, '/body/maxSeverity'],
      [{ ...base, schedule: { weekdays: [7], start: '10:00', end: '11:00', timezone: 'UTC' } }, '/body/schedule/weekdays/0'],
      [{ ...base, schedule: { weekdays: [1], start: '25:00', end: '11:00', timezone: 'UTC' } }, '/body/schedule/start'],
      [{ ...base, schedule: { weekdays: [1], start: '10:00', end: '11:00', timezone: 'Mars/Olympus' } }, '/body/schedule/timezone'],
      [{ ...base, startsAt: 'yesterday' }, '/body/startsAt']
    ]
    for (const [payload, path] of cases) {
      const problem = expectProblem(await create(payload), 400, 'validation_failed')
      expect(problem.errors?.some((e) => e.path === path), `${path}: ${JSON.stringify(problem.errors)}`).toBe(true)
    }
  })
})
