import { describe, expect, it } from 'vitest'
import { auditActions, call, createService, expectProblem, signup, useApp } from '../../helpers.js'

const ctx = useApp()

describe('services', () => {
  it('creates with detection defaults, reads, merges detection on PATCH, deletes, and audits each change', async () => {
    const org = await signup(ctx.app)
    const created = await call(ctx.app, org.token, {
      method: 'POST',
      url: '/v1/services',
      payload: { name: 'checkout', environment: 'prod', detection: { zThreshold: 5, seasonality: 'daily', metrics: { latency_ms: { direction: 'up' } } } }
    })
    expect(created.statusCode).toBe(201)
    const service = created.json()
    expect(service.detection).toEqual({
      zThreshold: 5,
      minSamples: 30,
      minSpanSeconds: 1800,
      seasonality: 'daily',
      quietPeriodSeconds: 600,
      confirmSeconds: 60,
      openAfterWarnings: 3,
      warningWindowSeconds: 300,
      metrics: { latency_ms: { direction: 'up' } }
    })

    const plain = await createService(ctx.app, org, 'search')
    const fetched = await call(ctx.app, org.token, { method: 'GET', url: `/v1/services/${plain.id}` })
    expect(fetched.json().detection).toEqual({
      zThreshold: 4,
      minSamples: 30,
      minSpanSeconds: 1800,
      seasonality: 'auto',
      quietPeriodSeconds: 600,
      confirmSeconds: 60,
      openAfterWarnings: 3,
      warningWindowSeconds: 300,
      metrics: {}
    })

    const patched = await call(ctx.app, org.token, {
      method: 'PATCH',
      url: `/v1/services/${service.id}`,
      payload: { description: 'the checkout flow', detection: { minSamples: 40, minSpanSeconds: 0 } }
    })
    expect(patched.statusCode).toBe(200)
    expect(patched.json()).toMatchObject({
      description: 'the checkout flow',
      detection: { zThreshold: 5, minSamples: 40, minSpanSeconds: 0, seasonality: 'daily', metrics: { latency_ms: { direction: 'up' } } }
    })
    for (const detection of [{ minSpanSeconds: 604_801 }, { minSpanSeconds: -1 }, { seasonality: 'hourly' }]) {
      expectProblem(await call(ctx.app, org.token, { method: 'PATCH', url: `/v1/services/${service.id}`, payload: { detection } }), 400, 'validation_failed')
    }

    expectProblem(await call(ctx.app, org.token, { method: 'PATCH', url: `/v1/services/${service.id}`, payload: { name: 'search' } }), 409, 'conflict')
    expectProblem(await call(ctx.app, org.token, { method: 'PATCH', url: `/v1/services/${service.id}`, payload: {} }), 400, 'validation_failed')
    expectProblem(await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'checkout' } }), 409, 'conflict')

    expect((await call(ctx.app, org.token, { method: 'DELETE', url: `/v1/services/${service.id}` })).statusCode).toBe(204)
    expectProblem(await call(ctx.app, org.token, { method: 'GET', url: `/v1/services/${service.id}` }), 404, 'not_found')
    expectProblem(await call(ctx.app, org.token, { method: 'DELETE', url: `/v1/services/${service.id}` }), 404, 'not_found')
    // The name is free again once deleted.
    expect((await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'checkout' } })).statusCode).toBe(201)

    const audit = await auditActions(ctx.app, org, '&resourceType=service')
    expect(audit.filter((e) => e.resourceId === service.id).map((e) => e.action)).toEqual(['service.deleted', 'service.updated', 'service.created'])
    const update = audit.find((e) => e.action === 'service.updated')!
    expect(update.before).toMatchObject({ description: null, detection: { minSamples: 30, minSpanSeconds: 1800 } })
    expect(update.after).toMatchObject({ description: 'the checkout flow', detection: { minSamples: 40, minSpanSeconds: 0, seasonality: 'daily' } })
  })

  it('the free plan allows 5 services: the 6th answers 402 plan_limit, also under concurrency', async () => {
    const org = await signup(ctx.app)
    const attempts = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: `svc-${i}` } }))
    )
    expect(attempts.filter((r) => r.statusCode === 201)).toHaveLength(5)
    for (const refused of attempts.filter((r) => r.statusCode !== 201)) expectProblem(refused, 402, 'plan_limit')

    // Downgrade protection and upgrade path.
    const upgrade = await call(ctx.app, org.token, { method: 'PUT', url: '/v1/subscription', payload: { plan: 'team' } })
    expect(upgrade.json()).toMatchObject({ plan: 'team', limits: { maxServices: 50, autoRemediation: true } })
    expect((await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'after-upgrade' } })).statusCode).toBe(201)
    expectProblem(await call(ctx.app, org.token, { method: 'PUT', url: '/v1/subscription', payload: { plan: 'free' } }), 409, 'conflict')
    expect((await call(ctx.app, org.token, { method: 'GET', url: '/v1/subscription' })).json().plan).toBe('team')

    const audit = await auditActions(ctx.app, org, '&resourceType=subscription')
    expect(audit).toHaveLength(1)
    expect(audit[0]).toMatchObject({ action: 'subscription.plan_changed', before: { plan: 'free' }, after: { plan: 'team' } })
  })

  it('lists page by cursor without gaps or repeats', async () => {
    const org = await signup(ctx.app)
    await call(ctx.app, org.token, { method: 'PUT', url: '/v1/subscription', payload: { plan: 'enterprise' } })
    const names = []
    for (let i = 0; i < 7; i++) names.push((await createService(ctx.app, org, `page-${i}`)).name)
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const res = await call(ctx.app, org.token, { method: 'GET', url: `/v1/services?limit=3${cursor ? `&cursor=${cursor}` : ''}` })
      const body = res.json()
      seen.push(...body.items.map((s: { name: string }) => s.name))
      cursor = body.nextCursor
      pages++
    } while (cursor)
    expect(pages).toBe(3)
    expect(seen).toEqual([...names].reverse())
  })
})
