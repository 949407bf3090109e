import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { actions } from '../../src/db/schema/index.js'
import { actionShownTo, redactParams } from '../../src/lib/redact.js'
import { startWorker } from '../../src/worker.js'
import { openIncident } from '../fixtures.js'
import { apiKey, auditActions, call, createService, expectProblem, signup, useApp, userWithRole, type Org } from '../helpers.js'
import { startReceiver } from '../receiver.js'

/*
 * Issue 13, item 8: webhook params (headers above all) carry receivers' secrets. Only admins (and owners)
 * read them; agents and operators get them redacted, in every answer and on the event stream.
 */
const ctx = useApp({ WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' })

let receiver: Awaited<ReturnType<typeof startReceiver>>
let base: string
beforeAll(async () => {
  receiver = await startReceiver()
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  base = `http://127.0.0.1:${(ctx.app.server.address() as { port: number }).port}`
})
afterAll(async () => {
  await receiver?.close()
})

const HEADERS = { Authorization: 'Bearer receiver-s3cret', 'X-Receiver-Key': 'k-12345' }
const REDACTED_HEADERS = { Authorization: '[redacted]', 'X-Receiver-Key': '[redacted]' }

interface Setup {
  org: Org
  agent: string
  operator: string
  admin: string
  adminKey: string
  incidentId: string
}
async function setup(): Promise<Setup> {
  const org = await signup(ctx.app)
  const service = await createService(ctx.app, org)
  return {
    org,
    agent: (await apiKey(ctx.app, org, 'agent')).key,
    operator: await userWithRole(ctx.app, org, 'operator'),
    admin: await userWithRole(ctx.app, org, 'admin'),
    adminKey: (await apiKey(ctx.app, org, 'admin')).key,
    incidentId: (await openIncident(ctx.app, org, service.id)).id
  }
}
async function propose(s: Setup, params: Record<string, unknown>) {
  const res = await call(ctx.app, s.operator, { method: 'POST', url: `/v1/incidents/${s.incidentId}/actions`, payload: { type: 'webhook', params } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json()
}
const get = async (token: string, url: string) => {
  const res = await call(ctx.app, token, { method: 'GET', url })
  expect(res.statusCode, res.body).toBe(200)
  return res.json()
}

/** An SSE subscription over the real port; `first(type)` is the data of the next event of that type. */
async function subscribe(token: string) {
  const aborter = new AbortController()
  const res = await fetch(`${base}/v1/events`, { headers: { authorization: `Bearer ${token}` }, signal: aborter.signal })
  expect(res.status).toBe(200)
  // The server opens its reader before answering: from here on, nothing published is missed.
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  async function first(type: string): Promise<Record<string, unknown>> {
    for (;;) {
      const end = buffer.indexOf('\n\n')
      if (end < 0) {
        const { value, done } = await reader.read()
        if (done) throw new Error('the stream ended')
        buffer += value
        continue
      }
      const lines = buffer.slice(0, end).split('\n')
      buffer = buffer.slice(end + 2)
      const fields = Object.fromEntries(lines.filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]))
      if (fields.event === type) return JSON.parse(fields.data!)
    }
  }
  return { first, close: () => aborter.abort() }
}

describe('webhook secrets in action params', () => {
  it('agents and operators see header values and URL secrets redacted in actions and incidents; admins see them', async () => {
    const s = await setup()
    const url = `http://hook-user:hook-pass@127.0.0.1:9/hook?token=t0k3n&region=eu&X-Signature=abc`
    const params = { url, headers: HEADERS, body: { restart: 'api' } }
    const redacted = {
      url: 'http://[redacted]:[redacted]@127.0.0.1:9/hook?token=[redacted]&region=eu&X-Signature=[redacted]',
      headers: REDACTED_HEADERS,
      body: { restart: 'api' }
    }

    const proposed = await propose(s, params)
    expect(proposed.params).toEqual(redacted) // the operator's own answer too

    for (const token of [s.agent, s.operator]) {
      expect((await get(token, `/v1/actions/${proposed.id}`)).params).toEqual(redacted)
      expect((await get(token, `/v1/actions?incidentId=${s.incidentId}`)).items[0].params).toEqual(redacted)
      expect((await get(token, `/v1/incidents/${s.incidentId}`)).actions[0].params).toEqual(redacted)
      expect(JSON.stringify(await get(token, `/v1/incidents/${s.incidentId}`))).not.toContain('s3cret')
    }
    for (const token of [s.org.token, s.admin, s.adminKey]) {
      expect((await get(token, `/v1/actions/${proposed.id}`)).params).toEqual(params)
      expect((await get(token, `/v1/actions?incidentId=${s.incidentId}`)).items[0].params).toEqual(params)
      expect((await get(token, `/v1/incidents/${s.incidentId}`)).actions[0].params).toEqual(params)
    }

    // Only the answers change: the stored row and the audit trail (admin only) keep the values.
    const [row] = await ctx.app.db.select().from(actions).where(eq(actions.id, proposed.id))
    expect(row!.params).toEqual(params)
    const [entry] = await auditActions(ctx.app, s.org, `&resourceType=action&resourceId=${proposed.id}`)
    expect(entry!.after).toMatchObject({ params })
  })

  it('runbooks, which hold the same headers, and the audit trail are not readable below admin', async () => {
    const s = await setup()
    const service = await createService(ctx.app, s.org)
    const runbook = await call(ctx.app, s.org.token, {
      method: 'POST',
      url: `/v1/services/${service.id}/runbooks`,
      payload: { name: 'restart', match: {}, action: { type: 'webhook', params: { url: `${receiver.url}/rb`, headers: HEADERS } } }
    })
    expect(runbook.statusCode, runbook.body).toBe(201)
    for (const token of [s.agent, s.operator]) {
      expectProblem(await call(ctx.app, token, { method: 'GET', url: `/v1/services/${service.id}/runbooks` }), 403, 'forbidden')
      expectProblem(await call(ctx.app, token, { method: 'GET', url: `/v1/services/${service.id}/runbooks/${runbook.json().id}` }), 403, 'forbidden')
      expectProblem(await call(ctx.app, token, { method: 'GET', url: '/v1/audit' }), 403, 'forbidden')
    }
    expect((await get(s.admin, `/v1/services/${service.id}/runbooks/${runbook.json().id}`)).action.params.headers).toEqual(HEADERS)
  })

  it('action.updated on the event stream is redacted for an agent key and an operator, not for an admin', async () => {
    const s = await setup()
    const streams = {
      agent: await subscribe(s.agent),
      operator: await subscribe(s.operator),
      admin: await subscribe(s.admin)
    }
    try {
      const params = { url: `${receiver.url}/sse?api_key=abc`, headers: HEADERS }
      const proposed = await propose(s, params)
      const [agent, operator, admin] = await Promise.all([
        streams.agent.first('action.updated'),
        streams.operator.first('action.updated'),
        streams.admin.first('action.updated')
      ])
      const redacted = { url: `${receiver.url}/sse?api_key=[redacted]`, headers: REDACTED_HEADERS }
      expect(agent).toMatchObject({ id: proposed.id, params: redacted })
      expect(operator).toMatchObject({ id: proposed.id, params: redacted })
      expect(admin).toMatchObject({ id: proposed.id, params })
    } finally {
      for (const stream of Object.values(streams)) stream.close()
    }
  })

  it('the webhook is still called with the real header values', async () => {
    const stopWorker = await startWorker(ctx.config)
    try {
      const s = await setup()
      const proposed = await propose(s, { url: `${receiver.url}/delivered`, headers: HEADERS })
      expect((await call(ctx.app, s.operator, { method: 'POST', url: `/v1/actions/${proposed.id}/approve` })).statusCode).toBe(200)
      await expect.poll(async () => (await get(s.admin, `/v1/actions/${proposed.id}`)).status, { timeout: 8000, interval: 100 }).toBe('succeeded')
      const delivered = receiver.received.filter((r) => r.url === '/delivered')
      expect(delivered).toHaveLength(1)
      expect(delivered[0]!.headers).toMatchObject({ authorization: HEADERS.Authorization, 'x-receiver-key': HEADERS['X-Receiver-Key'] })
    } finally {
      await stopWorker()
    }
  })
})

describe('redactParams', () => {
  it('leaves URLs without secrets as they were, and dry runs alone', () => {
    const url = 'http://127.0.0.1:8080/hooks/restart?region=eu&service=api'
    expect(redactParams('webhook', { url })).toEqual({ url })
    expect(redactParams('dry_run', { headers: { a: 'b' } })).toEqual({ headers: { a: 'b' } })
  })

  it('redacts query values whose names look secret, and the URL user alone', () => {
    const shown = redactParams('webhook', {
      url: 'https://deploy@hooks.example/x?access_token=1&sig=2&password=3&auth=4&SECRET=5&keyId=6&page=7',
      method: 'PUT',
      headers: {}
    })
    expect(shown).toEqual({
      url: 'https://[redacted]@hooks.example/x?access_token=[redacted]&sig=[redacted]&password=[redacted]&auth=[redacted]&SECRET=[redacted]&keyId=[redacted]&page=7',
      method: 'PUT',
      headers: {}
    })
  })

  it("redacts the copy of the params in a dry run's result too, below admin only", () => {
    const params = { url: 'https://hooks.example/x', headers: { Authorization: 'Bearer s3cret' } }
    const action = { type: 'webhook', params, result: { dryRun: true, wouldRun: { type: 'webhook', params } } }
    const shown = actionShownTo('operator', action)
    expect(JSON.stringify(shown)).not.toContain('s3cret')
    expect(shown.result.wouldRun.params).toEqual({ url: 'https://hooks.example/x', headers: { Authorization: '[redacted]' } })
    expect(actionShownTo('admin', action)).toBe(action)
    expect(action.params.headers.Authorization).toBe('Bearer s3cret')
  })
})
