import { beforeAll, describe, expect, it } from 'vitest'
import { auditActions, call, expectProblem, signup, useApp, type Org } from '../helpers.js'

const ctx = useApp()

describe('validation', () => {
  let org: Org
  beforeAll(async () => {
    org = await signup(ctx.app)
  })

  const createService = (payload: unknown, headers: Record<string, string> = {}) =>
    call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: payload as object, headers })

  it('rejects bad bodies with 400 problem+json, errors[] pointing at the field, and writes nothing', async () => {
    const auditBefore = await auditActions(ctx.app, org)
    const cases: [unknown, string][] = [
      [{ name: 'ok-name', color: 'blue' }, '/body/color'],
      [{ name: 42 }, '/body/name'],
      [{ name: 'Not Valid!' }, '/body/name'],
      [{}, '/body/name'],
      [{ name: 'ok-name', description: 'x'.repeat(1001) }, '/body/description'],
      [{ name: 'ok-name', detection: { zThreshold: '3' } }, '/body/detection/zThreshold'],
      [{ name: 'ok-name', detection: { zThreshold: 0 } }, '/body/detection/zThreshold'],
      [{ name: 'ok-name', detection: { minSamples: 2.5 } }, '/body/detection/minSamples'],
      [{ name: 'ok-name', detection: { metrics: { cpu: { direction: 'sideways' } } } }, '/body/detection/metrics/cpu/direction'],
      [{ name: 'ok-name', detection: { metrics: { 'bad metric': { direction: 'up' } } } }, '/body/detection/metrics']
    ]
    for (const [payload, path] of cases) {
      const problem = expectProblem(await createService(payload), 400, 'validation_failed')
      expect(problem.errors?.map((e) => e.path).some((p) => p.startsWith(path)), `${JSON.stringify(payload)} → ${JSON.stringify(problem.errors)}`).toBe(true)
    }
    const list = await call(ctx.app, org.token, { method: 'GET', url: '/v1/services' })
    expect(list.json().items).toEqual([])
    expect(await auditActions(ctx.app, org)).toEqual(auditBefore)
  })

  it('rejects malformed JSON, oversized bodies and unsupported media types', async () => {
    const malformed = await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: '{"name":', headers: { 'content-type': 'application/json' } })
    expect(expectProblem(malformed, 400, 'validation_failed').errors?.[0]?.path).toBe('/body')

    const huge = await createService({ name: 'big', description: 'x'.repeat(2 * 1024 * 1024) })
    expect(expectProblem(huge, 400, 'validation_failed').errors?.[0]?.path).toBe('/body')

    const text = await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: '<name>x</name>', headers: { 'content-type': 'application/xml' } })
    expectProblem(text, 415, 'unsupported_media_type')
    expect((await call(ctx.app, org.token, { method: 'GET', url: '/v1/services' })).json().items).toEqual([])
  })

  it('rejects out-of-range limits, malformed ids, bad cursors and unknown query parameters', async () => {
    const get = (url: string) => call(ctx.app, org.token, { method: 'GET', url })
    const checks: [string, string][] = [
      ['/v1/services?limit=0', '/querystring/limit'],
      ['/v1/services?limit=201', '/querystring/limit'],
      ['/v1/services?limit=ten', '/querystring/limit'],
      ['/v1/services?cursor=bm9wZQ', '/querystring/cursor'],
      ['/v1/services?color=blue', '/querystring/color'],
      ['/v1/services/not-a-uuid', '/params/id'],
      ['/v1/incidents/123', '/params/id'],
      ['/v1/incidents?status=closed', '/querystring/status'],
      ['/v1/audit?resourceType=DROP%20TABLE', '/querystring/resourceType']
    ]
    for (const [url, path] of checks) {
      const problem = expectProblem(await get(url), 400, 'validation_failed')
      expect(problem.errors?.[0]?.path, url).toBe(path)
    }
  })

  it('unknown routes answer problem+json 404', async () => {
    expectProblem(await call(ctx.app, org.token, { method: 'GET', url: '/v1/nope' }), 404, 'not_found')
  })
})
