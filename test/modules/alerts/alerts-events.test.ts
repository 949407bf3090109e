import { request as httpRequest } from 'node:http'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import type { AccessTokenClaims } from '../../../src/modules/auth/tokens.js'
import { apiKey, auditActions, calmSamples, call, expectProblem, signup, useApp, userWithRole, warmSamples, type Org } from '../../helpers.js'

const ctx = useApp()

describe('POST /v1/alerts', () => {
  let org: Org
  let key: string
  beforeAll(async () => {
    org = await signup(ctx.app)
    key = (await apiKey(ctx.app, org)).key
  })
  const alert = (payload: object) => call(ctx.app, key, { method: 'POST', url: '/v1/alerts', payload })
  const base = { service: 'db', dedupKey: 'disk-full/db-1', title: 'Disk 90% full', severity: 'warning' }

  it('deduplicates triggers by key, resolves, and opens anew after a resolve', async () => {
    const first = await alert({ ...base, action: 'trigger', details: { mount: '/var' } })
    expect(first.statusCode, first.body).toBe(202)
    const incident = first.json().incident
    expect(incident).toMatchObject({ source: 'alert', dedupKey: base.dedupKey, status: 'open', severity: 'warning', service: 'db', anomalyCount: 1 })

    const second = (await alert({ ...base, action: 'trigger', severity: 'critical', title: 'Disk 99% full' })).json().incident
    expect(second).toMatchObject({ id: incident.id, severity: 'critical', title: 'Disk 99% full', anomalyCount: 2, details: { mount: '/var' } })

    const other = (await alert({ ...base, dedupKey: 'cpu/db-1', action: 'trigger' })).json().incident
    expect(other.id).not.toBe(incident.id)

    const resolved = (await alert({ ...base, action: 'resolve' })).json().incident
    expect(resolved).toMatchObject({ id: incident.id, status: 'resolved' })
    expect((await alert({ ...base, action: 'resolve' })).json().incident).toBeNull()

    const reopened = (await alert({ ...base, action: 'trigger' })).json().incident
    expect(reopened.id).not.toBe(incident.id)
    expect(reopened.status).toBe('open')

    const audit = await auditActions(ctx.app, org, `&resourceType=incident&resourceId=${incident.id}`)
    expect(audit.map((e) => e.action)).toEqual(['incident.resolved', 'incident.escalated', 'incident.opened'])
  })

  it('concurrent triggers with one key converge on one incident', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => alert({ ...base, dedupKey: 'race', action: 'trigger' })))
    const ids = new Set(results.map((r) => r.json().incident.id))
    expect(ids.size).toBe(1)
    expect(results.at(-1)!.json().incident.anomalyCount).toBeGreaterThanOrEqual(1)
  })

  it('validates the body', async () => {
    expectProblem(await alert({ ...base, action: 'explode' }), 400, 'validation_failed')
    expectProblem(await alert({ ...base, action: 'trigger', severity: 'info' }), 400, 'validation_failed')
    expectProblem(await alert({ ...base, action: 'trigger', service: 'Not Valid' }), 400, 'validation_failed')
  })
})

describe('suppression during detection', () => {
  let org: Org
  let key: string
  let operator: string
  beforeAll(async () => {
    org = await signup(ctx.app)
    key = (await apiKey(ctx.app, org)).key
    operator = await userWithRole(ctx.app, org, 'operator')
  })
  const ingest = (samples: object[]) => call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples } })
  const rule = (payload: object) => call(ctx.app, operator, { method: 'POST', url: '/v1/suppression-rules', payload })
  const warm = async (service: string) => {
    const res = await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: service, detection: { minSamples: 5, confirmSeconds: 0 } } })
    expect(res.statusCode).toBe(201)
    // Timestamped samples 5 minutes apart: enough sample time (minSpanSeconds 1800) for the baseline to score.
    await ingest(warmSamples(service, 'latency', 10, { stepMs: 300_000 }))
    return res.json().id as string
  }

  it('an absolute window suppresses matching anomalies: recorded as suppressed, no incident', async () => {
    const serviceId = await warm('batch-eu')
    const now = Date.now()
    expect((await rule({ service: 'batch-*', metric: 'lat*', startsAt: now - 60_000, endsAt: now + 3_600_000, reason: 'reindex' })).statusCode).toBe(201)
    const res = (await ingest([{ service: 'batch-eu', metric: 'latency', value: 999 }])).json()
    expect(res.anomalies).toEqual([expect.objectContaining({ severity: 'critical', suppressed: true })])
    expect(res.incidents).toEqual([])
    const window = (await call(ctx.app, key, { method: 'GET', url: `/v1/services/${serviceId}/anomalies` })).json().items
    expect(window).toEqual([expect.objectContaining({ suppressed: true, value: 999 })])
  })

  it('maxSeverity warning lets criticals through', async () => {
    await warm('api-gw')
    const now = Date.now()
    await rule({ service: 'api-gw', maxSeverity: 'warning', startsAt: now - 60_000, endsAt: now + 3_600_000, reason: 'noisy' })
    const res = (await ingest([{ service: 'api-gw', metric: 'latency', value: 999 }])).json()
    expect(res.anomalies[0]).toMatchObject({ severity: 'critical', suppressed: false })
    expect(res.incidents).toHaveLength(1)
  })

  it('a recurring window applies only inside its weekly hours, in its time zone', async () => {
    await warm('cron-jobs')
    const now = Date.now()
    // A weekly window around the current minute in Tokyo, and one that excludes it.
    const tokyo = new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Tokyo', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    const parts = Object.fromEntries(tokyo.formatToParts(now).map((p) => [p.type, p.value]))
    const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(parts.weekday!)
    const hh = (h: number) => String((h + 24) % 24).padStart(2, '0')
    const hour = Number(parts.hour)
    // A window belongs to the weekday it starts on: just after midnight, the one around now began yesterday.
    const around = { weekdays: [(weekday + 6) % 7, weekday], start: `${hh(hour - 1)}:00`, end: `${hh(hour + 2)}:00`, timezone: 'Asia/Tokyo' }
    const elsewhere = { weekdays: [(weekday + 3) % 7], start: '00:00', end: '23:59', timezone: 'Asia/Tokyo' }

    await rule({ service: 'cron-jobs', metric: 'other', startsAt: now - 60_000, endsAt: now + 86_400_000, schedule: around, reason: 'other metric' })
    await rule({ service: 'cron-jobs', startsAt: now - 60_000, endsAt: now + 86_400_000, schedule: elsewhere, reason: 'another day' })
    const outside = (await ingest([{ service: 'cron-jobs', metric: 'latency', value: 999 }])).json()
    expect(outside.anomalies[0]).toMatchObject({ suppressed: false })
    // End that episode: the next spike starts a new one, listed again.
    await ingest(calmSamples('cron-jobs', 'latency'))

    await rule({ service: 'cron-jobs', startsAt: now - 60_000, endsAt: now + 86_400_000, schedule: around, reason: 'nightly batch' })
    const insideRes = await ingest([{ service: 'cron-jobs', metric: 'latency', value: 5000 }])
    expect(insideRes.statusCode, insideRes.body).toBe(202)
    const inside = insideRes.json()
    expect(inside.anomalies[0]).toMatchObject({ suppressed: true })
  })

  it('preview reports what a rule would have suppressed in the last hour, without saving it', async () => {
    const now = Date.now()
    const preview = await call(ctx.app, operator, {
      method: 'POST',
      url: '/v1/suppression-rules/preview',
      payload: { service: 'api-*', startsAt: now - 3_600_000, endsAt: now + 60_000, reason: 'what if' }
    })
    expect(preview.statusCode, preview.body).toBe(200)
    expect(preview.json()).toMatchObject({ matches: 1, examples: [expect.objectContaining({ service: 'api-gw', metric: 'latency', severity: 'critical' })] })
    const none = await call(ctx.app, operator, {
      method: 'POST',
      url: '/v1/suppression-rules/preview',
      payload: { service: 'api-*', maxSeverity: 'warning', startsAt: now - 3_600_000, endsAt: now + 60_000, reason: 'what if' }
    })
    expect(none.json().matches).toBe(0)
    const rules = (await call(ctx.app, org.token, { method: 'GET', url: '/v1/suppression-rules' })).json().items
    expect(rules.some((r: { reason: string }) => r.reason === 'what if')).toBe(false)
    expectProblem(await call(ctx.app, key, { method: 'POST', url: '/v1/suppression-rules/preview', payload: {} }), 403, 'forbidden')
  })
})

interface SseEvent {
  id?: string
  event: string
  data: { dedupKey?: string } & Record<string, unknown>
}

/** An SSE connection over a real port: records events and comments, calls `onChange` as they come and when it ends. */
function openStream(url: string, token: string, lastEventId?: string, onChange: () => void = () => {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'text/event-stream' }
  if (lastEventId) headers['last-event-id'] = lastEventId
  let buffer = ''
  const req = httpRequest(url, { headers }, (res) => {
    stream.status = res.statusCode ?? 0
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      buffer += chunk
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const lines = buffer.slice(0, end).split('\n')
        buffer = buffer.slice(end + 2)
        for (const line of lines) if (line.startsWith(': ')) stream.comments.push(line.slice(2))
        const fields = Object.fromEntries(
          lines.filter((l) => !l.startsWith(':') && l.includes(': ')).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)])
        )
        if (fields.event && fields.data) stream.events.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data) })
      }
      onChange()
    })
    res.on('end', () => {
      stream.ended = true
      onChange()
    })
    onChange()
  })
  const stream = { status: 0, events: [] as SseEvent[], comments: [] as string[], ended: false, close: () => req.destroy() }
  req.on('error', () => {
    stream.ended = true
    onChange()
  })
  req.end()
  return stream
}

/** The first `count` events of a stream (then it is closed); fails on another status, an early end or after 10 s. */
function readEvents(url: string, token: string, count: number, lastEventId?: string) {
  return new Promise<SseEvent[]>((resolve, reject) => {
    const timer = setTimeout(() => settle(new Error('timed out waiting for events')), 10_000)
    const settle = (err?: Error) => {
      clearTimeout(timer)
      stream.close()
      if (err) reject(err)
      else resolve(stream.events.slice(0, count))
    }
    const stream = openStream(url, token, lastEventId, () => {
      if (stream.events.length >= count) settle()
      else if (stream.status !== 0 && stream.status !== 200) settle(new Error(`status ${stream.status}`))
      else if (stream.ended) settle(new Error('the stream ended'))
    })
  })
}

describe('GET /v1/events (SSE over a real port)', () => {
  let base: string
  beforeAll(async () => {
    await ctx.app.listen({ port: 0, host: '127.0.0.1' })
    base = `http://127.0.0.1:${(ctx.app.server.address() as { port: number }).port}`
  })

  it('delivers incident.opened to the organization only, and resumes after Last-Event-ID', async () => {
    const org = await signup(ctx.app)
    const other = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const stranger = readEvents(`${base}/v1/events`, other.token, 1).catch(() => [])
    const listening = readEvents(`${base}/v1/events`, key, 3)
    await new Promise((resolve) => setTimeout(resolve, 300))

    await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'sse', detection: { minSamples: 5, confirmSeconds: 0 } } })
    await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: warmSamples('sse', 'lat', 10, { stepMs: 300_000 }) } })
    await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: [{ service: 'sse', metric: 'lat', value: 999 }] } })
    const incident = (await call(ctx.app, key, { method: 'GET', url: '/v1/incidents?service=sse' })).json().items[0]
    await call(ctx.app, org.token, { method: 'POST', url: `/v1/incidents/${incident.id}/acknowledge` })

    const events = await listening
    expect(events.map((e) => e.event)).toEqual(['anomaly.detected', 'incident.opened', 'incident.updated'])
    expect(events[1]!.data).toMatchObject({ id: incident.id, service: 'sse', status: 'open' })

    // Resume after the first event: the next two come again, in order.
    const resumed = await readEvents(`${base}/v1/events`, key, 2, events[0]!.id)
    expect(resumed.map((e) => e.id)).toEqual([events[1]!.id, events[2]!.id])

    // The other organization saw nothing within the time it took.
    const strangerEvents = await Promise.race([stranger, new Promise((resolve) => setTimeout(() => resolve('none'), 200))])
    expect(strangerEvents).toBe('none')
  })

  it('ends an open stream when its API key is revoked, before delivering anything more', async () => {
    const org = await signup(ctx.app)
    const key = await apiKey(ctx.app, org)
    const second = (await apiKey(ctx.app, org)).key
    const trigger = (dedupKey: string) =>
      call(ctx.app, second, { method: 'POST', url: '/v1/alerts', payload: { service: 'sse-revoke', dedupKey, title: dedupKey, severity: 'warning', action: 'trigger' } })
    const stream = openStream(`${base}/v1/events`, key.key)
    await new Promise((resolve) => setTimeout(resolve, 300))
    await trigger('before')
    await vi.waitFor(() => expect(stream.events.map((e) => e.data.dedupKey)).toContain('before'))

    expect((await call(ctx.app, org.token, { method: 'DELETE', url: `/v1/api-keys/${key.id}` })).statusCode).toBe(204)
    await trigger('after')
    // Ends by itself (the server re-checks the key at least every 5 s), without the event sent after the revocation.
    await vi.waitFor(() => expect(stream.ended).toBe(true), { timeout: 8000 })
    expect(stream.events.map((e) => e.data.dedupKey)).not.toContain('after')
    expect(stream.comments).toContain('credential revoked or expired')
  })

  it('ends an open stream when its access token expires', async () => {
    const org = await signup(ctx.app)
    const claims = ctx.app.jwt.decode<AccessTokenClaims>(org.token)!
    const shortLived = ctx.app.jwt.sign({ sub: claims.sub, org: claims.org, role: claims.role, sid: claims.sid }, { expiresIn: 1 })
    const stream = openStream(`${base}/v1/events`, shortLived)
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(stream.ended).toBe(false)
    await vi.waitFor(() => expect(stream.ended).toBe(true), { timeout: 8000 })
    expect(stream.comments).toContain('credential revoked or expired')
  })

  it('refuses a malformed Last-Event-ID and unauthenticated clients', async () => {
    const org = await signup(ctx.app)
    expectProblem(await call(ctx.app, org.token, { method: 'GET', url: '/v1/events', headers: { 'last-event-id': 'abc' } }), 400, 'validation_failed')
    expectProblem(await call(ctx.app, undefined, { method: 'GET', url: '/v1/events' }), 401, 'unauthorized')
  })
})
