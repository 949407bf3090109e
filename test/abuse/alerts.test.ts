import { describe, expect, it } from 'vitest'
import { MAX_EVENT_DATA_BYTES } from '../../src/modules/events/publisher.js'
import { MAX_DETAILS_BYTES, MAX_DETAILS_KEYS } from '../../src/modules/incidents/lifecycle.js'
import { PLAN_LIMITS } from '../../src/modules/subscription/plans.js'
import { keys } from '../../src/redis/keys.js'
import { apiKey, auditActions, call, createService, expectProblem, signup, useApp, type Org } from '../helpers.js'

/*
 * External alerts against shared stores (issue 13, items 5 and 13): one alert past the plan does not lose the
 * others, a resolve registers nothing, details and events stay bounded, and a repeat writes nothing. Each of
 * these failed on the code before the fix.
 */
const ctx = useApp()

interface AlertmanagerAlert {
  status: 'firing' | 'resolved'
  labels: Record<string, string>
  annotations?: Record<string, string>
  fingerprint: string
}

const firing = (service: string, fingerprint: string, annotations: Record<string, string> = { summary: `${service} is down` }): AlertmanagerAlert => ({
  status: 'firing',
  labels: { alertname: 'Down', service, severity: 'warning' },
  annotations,
  fingerprint
})

/** A notification as Alertmanager sends it (payload version 4). */
const notification = (alerts: AlertmanagerAlert[]) => ({
  version: '4',
  status: 'firing',
  receiver: 'autopilot',
  groupLabels: {},
  commonLabels: {},
  alerts: alerts.map((a) => ({ ...a, startsAt: '2024-05-01T10:00:00Z', endsAt: '0001-01-01T00:00:00Z', generatorURL: 'http://prometheus/graph' }))
})

async function agent() {
  const org = await signup(ctx.app)
  return { org, key: (await apiKey(ctx.app, org)).key }
}
const webhook = (key: string, alerts: AlertmanagerAlert[]) =>
  call(ctx.app, key, { method: 'POST', url: '/v1/integrations/alertmanager', payload: notification(alerts) })
const serviceNames = async (org: Org) =>
  ((await call(ctx.app, org.token, { method: 'GET', url: '/v1/services?limit=100' })).json().items as { name: string }[]).map((s) => s.name)
const incident = async (key: string, id: string) => (await call(ctx.app, key, { method: 'GET', url: `/v1/incidents/${id}` })).json()
const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value))

describe('Alertmanager webhook: each alert on its own', () => {
  it('alerts for three new services with room for one: the first applied, the others refused, a later alert still applied (200)', async () => {
    const { org, key } = await agent()
    await createService(ctx.app, org, 'existing')
    for (let i = 2; i < PLAN_LIMITS.free.maxServices!; i++) await createService(ctx.app, org, `filler-${i}`)

    const res = await webhook(key, [firing('new-a', 'fp-a'), firing('new-b', 'fp-b'), firing('new-c', 'fp-c'), firing('existing', 'fp-existing')])
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json()
    expect(body).toMatchObject({ applied: 2, refused: 2, ignored: 0 })
    expect(body.results).toEqual([
      expect.objectContaining({ index: 0, fingerprint: 'fp-a', outcome: 'applied', status: 'open', incidentId: expect.any(String) }),
      expect.objectContaining({ index: 1, fingerprint: 'fp-b', outcome: 'refused', code: 'plan_limit', detail: expect.stringContaining('plan'), incidentId: null }),
      expect.objectContaining({ index: 2, fingerprint: 'fp-c', outcome: 'refused', code: 'plan_limit', incidentId: null }),
      expect.objectContaining({ index: 3, fingerprint: 'fp-existing', outcome: 'applied', status: 'open', incidentId: expect.any(String) })
    ])
    expect((await incident(key, body.results[3].incidentId)).service).toBe('existing')
    const names = await serviceNames(org)
    expect(names).toContain('new-a')
    expect(names).not.toContain('new-b')
    expect(names).not.toContain('new-c')
  })

  it('a resolved alert for an unknown service registers nothing and is reported ignored', async () => {
    const { org, key } = await agent()
    const res = await webhook(key, [{ status: 'resolved', labels: { alertname: 'Down', service: 'ghost' }, fingerprint: 'fp-ghost' }])
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ applied: 0, refused: 0, ignored: 1 })
    expect(res.json().results).toEqual([expect.objectContaining({ index: 0, outcome: 'ignored', code: 'no_open_incident', incidentId: null })])
    expect(await serviceNames(org)).not.toContain('ghost')
  })
})

describe('alert details and events are bounded', () => {
  it('details past the bound are refused: 413 on POST /v1/alerts, per alert on the webhook, registering nothing', async () => {
    const { org, key } = await agent()
    const big = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'x'.repeat(500)]))
    expect(jsonBytes(big)).toBeGreaterThan(MAX_DETAILS_BYTES)
    const refused = await call(ctx.app, key, {
      method: 'POST',
      url: '/v1/alerts',
      payload: { service: 'big-details', dedupKey: 'big', action: 'trigger', title: 'big', severity: 'warning', details: big }
    })
    expectProblem(refused, 413, 'details_too_large')

    const res = await webhook(key, [firing('big-am', 'fp-big', { summary: 'big', text: 'y'.repeat(MAX_DETAILS_BYTES) }), firing('small-am', 'fp-small')])
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json().results).toEqual([
      expect.objectContaining({ index: 0, outcome: 'refused', code: 'details_too_large', incidentId: null }),
      expect.objectContaining({ index: 1, outcome: 'applied' })
    ])
    const names = await serviceNames(org)
    expect(names).toContain('small-am')
    expect(names).not.toContain('big-details')
    expect(names).not.toContain('big-am')
  })

  it('merged details never exceed the bound after many triggers, and keep the latest trigger\'s keys', async () => {
    const { key } = await agent()
    let id = ''
    let last: Record<string, string> = {}
    for (let round = 0; round < 8; round++) {
      last = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`r${round}-k${i}`, 'v'.repeat(400)]))
      const res = await call(ctx.app, key, {
        method: 'POST',
        url: '/v1/alerts',
        payload: { service: 'merging', dedupKey: 'merge', action: 'trigger', title: 'merge', severity: 'warning', details: last }
      })
      expect(res.statusCode, res.body).toBe(202)
      id = res.json().incident.id
    }
    const { details } = await incident(key, id)
    expect(jsonBytes(details)).toBeLessThanOrEqual(MAX_DETAILS_BYTES)
    expect(Object.keys(details).length).toBeLessThanOrEqual(MAX_DETAILS_KEYS)
    expect(details).toMatchObject(last)
  })

  it('an event of an incident with large details is cut to its scalar fields within the byte bound', async () => {
    const { org, key } = await agent()
    const details = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, 'z'.repeat(450)]))
    expect(jsonBytes(details)).toBeLessThanOrEqual(MAX_DETAILS_BYTES)
    const res = await call(ctx.app, key, {
      method: 'POST',
      url: '/v1/alerts',
      payload: { service: 'eventful', dedupKey: 'event', action: 'trigger', title: 'event', severity: 'warning', details }
    })
    expect(res.statusCode, res.body).toBe(202)
    const entries = await ctx.app.redis.xrange(keys.events(org.organizationId), '-', '+')
    const opened = entries.map(([, fields]) => fields[fields.indexOf('data') + 1]!).filter((data) => data.includes(res.json().incident.id))
    expect(opened).toHaveLength(1)
    expect(Buffer.byteLength(opened[0]!)).toBeLessThanOrEqual(MAX_EVENT_DATA_BYTES)
    expect(JSON.parse(opened[0]!)).toMatchObject({ id: res.json().incident.id, status: 'open', service: 'eventful', dedupKey: 'event', truncated: true })
  })
})

describe('a repeated trigger writes nothing', () => {
  it('Alertmanager re-sending a firing alert unchanged adds no audit entry; a change still does', async () => {
    const { org, key } = await agent()
    const first = await webhook(key, [firing('repeat', 'fp-repeat')])
    const id = first.json().results[0].incidentId
    for (let i = 0; i < 3; i++) {
      const again = await webhook(key, [firing('repeat', 'fp-repeat')])
      expect(again.statusCode, again.body).toBe(200)
      expect(again.json().results[0]).toMatchObject({ outcome: 'applied', code: 'unchanged', incidentId: id, status: 'open' })
    }
    const audit = async () => (await auditActions(ctx.app, org, `&resourceType=incident&resourceId=${id}`)).map((e) => e.action)
    expect(await audit()).toEqual(['incident.opened'])
    expect((await incident(key, id)).anomalyCount).toBe(1)

    const changed = await webhook(key, [firing('repeat', 'fp-repeat', { summary: 'repeat is down again' })])
    expect(changed.json().results[0]).toMatchObject({ outcome: 'applied', incidentId: id })
    expect(changed.json().results[0]).not.toHaveProperty('code')
    expect(await audit()).toEqual(['incident.updated', 'incident.opened'])
  })

  it('POST /v1/alerts with the same trigger again adds no audit entry and answers the incident', async () => {
    const { org, key } = await agent()
    const payload = { service: 'same', dedupKey: 'same', action: 'trigger', title: 'same', severity: 'critical', details: { a: 1, nested: { b: [1, 2] } } }
    const first = (await call(ctx.app, key, { method: 'POST', url: '/v1/alerts', payload })).json().incident
    const again = await call(ctx.app, key, { method: 'POST', url: '/v1/alerts', payload })
    expect(again.statusCode, again.body).toBe(202)
    expect(again.json().incident).toMatchObject({ id: first.id, anomalyCount: 1, details: payload.details })
    expect((await auditActions(ctx.app, org, `&resourceType=incident&resourceId=${first.id}`)).map((e) => e.action)).toEqual(['incident.opened'])
  })
})
