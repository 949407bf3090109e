import snappy from 'snappyjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { encodeWriteRequest, WriteRequest } from '../../../src/modules/integrations/remote-write.js'
import { seriesOf, serviceOf } from '../../../src/modules/integrations/mapping.js'
import { apiKey, call, expectProblem, signup, useApp, type Org } from '../../helpers.js'

const ctx = useApp()

describe('Prometheus remote_write', () => {
  let org: Org
  let key: string
  beforeAll(async () => {
    org = await signup(ctx.app)
    key = (await apiKey(ctx.app, org)).key
  })
  const write = (payload: Buffer | string, contentType = 'application/x-protobuf') =>
    call(ctx.app, key, { method: 'POST', url: '/v1/integrations/prometheus/write', payload, headers: { 'content-type': contentType, 'content-encoding': 'snappy' } })

  it('maps series to services and metrics and feeds detection', async () => {
    const now = Date.now()
    const body = encodeWriteRequest([
      { labels: { __name__: 'http_requests_in_flight', job: 'Checkout API', instance: 'a:80' }, samples: Array.from({ length: 40 }, (_, i) => ({ value: 100 + (i % 3), timestamp: now - (40 - i) * 60_000 })) },
      { labels: { __name__: 'up', service: 'db', job: 'ignored' }, samples: [{ value: 1, timestamp: now }] },
      { labels: { __name__: 'orphan' }, samples: [{ value: 1, timestamp: now }] }
    ])
    const res = await write(body)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ series: 3, accepted: 41, rejected: 0, skippedSeries: 1 })
    const services = (await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items.map((s: { name: string }) => s.name).sort()
    expect(services).toEqual(['checkout-api', 'db'])
    const checkout = (await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items.find((s: { name: string }) => s.name === 'checkout-api')
    const baselines = (await call(ctx.app, key, { method: 'GET', url: `/v1/services/${checkout.id}/baselines` })).json().items
    expect(baselines).toEqual([
      expect.objectContaining({ metric: 'http_requests_in_flight', labels: { instance: 'a:80' }, kind: 'gauge', samples: 40, state: 'ready' })
    ])
  })

  it('refuses bodies that are not snappy, not protobuf, too large, or of another type — without side effects', async () => {
    const before = (await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items.length
    expectProblem(await write(Buffer.from('definitely not snappy')), 400, 'validation_failed')
    expectProblem(await write(snappy.compress(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]))), 400, 'validation_failed')
    expectProblem(await write(Buffer.alloc(9 * 1024 * 1024, 1)), 400, 'validation_failed')
    expectProblem(await write('{"samples":[]}', 'application/json'), 415, 'unsupported_media_type')
    expect((await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items.length).toBe(before)
  })

  it('guards cardinality per plan with a clear error', async () => {
    const series = Array.from({ length: 1001 }, (_, i) => ({ labels: { __name__: `m_${i}`, job: 'wide' }, samples: [{ value: 1, timestamp: Date.now() }] }))
    const res = await write(encodeWriteRequest(series))
    expect(expectProblem(res, 402, 'plan_limit')).toBeDefined()
    expect(res.json().detail).toContain('more than 1000 series')
    void WriteRequest
  })

  it('the label allow-list is retired: PUT answers 410, GET shows the active series against the plan', async () => {
    const own = await signup(ctx.app)
    const agent = (await apiKey(ctx.app, own)).key
    expectProblem(await call(ctx.app, own.token, { method: 'PUT', url: '/v1/integrations/prometheus/settings', payload: { extraLabels: ['instance'] } }), 410, 'gone')
    expect((await call(ctx.app, agent, { method: 'GET', url: '/v1/integrations/prometheus/settings' })).json()).toEqual({
      activeSeries: 0,
      activeSeriesLimit: 5000,
      extraLabels: []
    })
  })

  it('reads a series as its name plus every label but the one that chose the service', () => {
    expect(seriesOf({ __name__: 'up', job: 'node', instance: 'a:9100' })).toEqual({ service: 'node', metric: 'up', labels: { instance: 'a:9100' } })
    // `service` chose the service, so `job` is part of the series.
    expect(seriesOf({ __name__: 'up', service: 'db', job: 'pg' })).toEqual({ service: 'db', metric: 'up', labels: { job: 'pg' } })
    expect(seriesOf({ __name__: 'up', job: 'x', constructor: 'c', ['__proto__']: 'p' })?.labels).toEqual({ constructor: 'c', ['__proto__']: 'p' })
    expect(seriesOf({ job: 'x' })).toBeUndefined()
    expect(seriesOf({ __name__: 'up', job: 'x', big: 'v'.repeat(1025) })).toBeUndefined()
  })

  it('needs an agent credential', async () => {
    const res = await call(ctx.app, undefined, { method: 'POST', url: '/v1/integrations/prometheus/write', payload: encodeWriteRequest([]), headers: { 'content-type': 'application/x-protobuf' } })
    expectProblem(res, 401, 'unauthorized')
  })
})

describe('Alertmanager webhook', () => {
  it('firing opens an incident keyed by fingerprint, resolved resolves it', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const alert = (status: 'firing' | 'resolved') => ({
      version: '4',
      status,
      receiver: 'autopilot',
      groupLabels: {},
      commonLabels: {},
      alerts: [
        {
          status,
          labels: { alertname: 'HighLatency', job: 'checkout', severity: 'critical' },
          annotations: { summary: 'p99 latency above 2s', runbook: 'https://wiki/latency' },
          startsAt: new Date().toISOString(),
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: 'http://prometheus/graph',
          fingerprint: 'abc123'
        }
      ]
    })
    const post = (payload: object) => call(ctx.app, key, { method: 'POST', url: '/v1/integrations/alertmanager', payload })
    const fired = await post(alert('firing'))
    expect(fired.statusCode, fired.body).toBe(200)
    const incidentId = fired.json().results[0].incidentId
    const incident = (await call(ctx.app, key, { method: 'GET', url: `/v1/incidents/${incidentId}` })).json()
    expect(incident).toMatchObject({ source: 'alertmanager', service: 'checkout', severity: 'critical', title: 'p99 latency above 2s', status: 'open', dedupKey: 'alertmanager:abc123' })
    expect(incident.details.annotations.runbook).toBe('https://wiki/latency')
    expect((await post(alert('firing'))).json().results[0].incidentId).toBe(incidentId)
    const resolved = await post(alert('resolved'))
    expect(resolved.json().results[0]).toMatchObject({ incidentId, status: 'resolved' })
    expectProblem(await post({ version: '4', alerts: [{ status: 'pending', labels: {}, fingerprint: 'x' }] }), 400, 'validation_failed')
  })

  it('derives valid service names from labels', () => {
    expect(serviceOf({ service: 'API', job: 'x' })).toBe('api')
    expect(serviceOf({ job: 'node exporter/1' })).toBe('node-exporter-1')
    expect(serviceOf({ job: '***' })).toBeUndefined()
    expect(serviceOf({})).toBeUndefined()
  })
})
