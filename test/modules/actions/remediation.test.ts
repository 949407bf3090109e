import { createHmac } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWorker } from '../../../src/worker.js'
import { apiKey, auditActions, call, expectProblem, signup, steady, useApp, userWithRole, warmSamples, type Org } from '../../helpers.js'
import { startReceiver } from '../../receiver.js'

const ctx = useApp({
  WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
  SWEEP_INTERVAL_MS: '200',
  VERIFICATION_WINDOW_SECONDS: '1',
  WEBHOOK_MAX_ATTEMPTS: '3'
})

let receiver: Awaited<ReturnType<typeof startReceiver>>
let stopWorker: () => Promise<void>
const script = new Map<string, number[]>() // path → statuses to answer, in order (then 200)
beforeAll(async () => {
  receiver = await startReceiver((_n, request) => script.get(request.url)?.shift() ?? 200)
  stopWorker = await startWorker(ctx.config)
})
afterAll(async () => {
  await stopWorker?.()
  await receiver?.close()
})

const callsTo = (path: string) => receiver.received.filter((r) => r.url === path)

interface Setup {
  org: Org
  key: string
  operator: string
  serviceId: string
}
async function setup(plan: 'free' | 'team' = 'free'): Promise<Setup> {
  const org = await signup(ctx.app)
  if (plan !== 'free') await call(ctx.app, org.token, { method: 'PUT', url: '/v1/subscription', payload: { plan } })
  const key = (await apiKey(ctx.app, org)).key
  const operator = await userWithRole(ctx.app, org, 'operator')
  const service = await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'api', detection: { minSamples: 5, confirmSeconds: 0 } } })
  return { org, key, operator, serviceId: service.json().id }
}
const samples = (key: string, values: number[]) =>
  call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: values.map((value) => ({ service: 'api', metric: 'latency', value })) } })
async function openIncident(s: Setup) {
  // Timestamped samples 5 minutes apart: enough sample time (minSpanSeconds 1800) for the baseline to score.
  await call(ctx.app, s.key, { method: 'POST', url: '/v1/metrics', payload: { samples: warmSamples('api', 'latency', 10, { stepMs: 300_000 }) } })
  const res = (await samples(s.key, [900])).json()
  expect(res.incidents).toHaveLength(1)
  return res.incidents[0].id as string
}
const runbook = (s: Setup, path: string, approval: 'manual' | 'auto') =>
  call(ctx.app, s.org.token, {
    method: 'POST',
    url: `/v1/services/${s.serviceId}/runbooks`,
    payload: { name: 'restart', match: { metric: 'latency', minSeverity: 'warning' }, action: { type: 'webhook', params: { url: `${receiver.url}${path}`, body: { restart: 'api' } } }, approval }
  })
const action = async (s: Setup, id: string) => (await call(ctx.app, s.key, { method: 'GET', url: `/v1/actions/${id}` })).json()
const waitFor = <T>(probe: () => Promise<T>, until: (v: T) => boolean, timeout = 8000) =>
  expect.poll(async () => until(await probe()), { timeout, interval: 100 }).toBe(true)

describe('remediation end to end (real worker, real HTTP receiver)', () => {
  it('incident → runbook proposes → approve → one signed webhook → succeeded → verified → incident resolved', async () => {
    const s = await setup()
    expect((await runbook(s, '/manual', 'manual')).statusCode).toBe(201)
    const incidentId = await openIncident(s)

    const proposed = (await call(ctx.app, s.key, { method: 'GET', url: `/v1/actions?incidentId=${incidentId}` })).json().items
    expect(proposed).toHaveLength(1)
    expect(proposed[0]).toMatchObject({ status: 'pending_approval', statusReason: 'the runbook requires manual approval', type: 'webhook' })
    await sleep(500)
    expect(callsTo('/manual')).toHaveLength(0) // nothing runs before approval

    const approved = await call(ctx.app, s.operator, { method: 'POST', url: `/v1/actions/${proposed[0].id}/approve` })
    expect(approved.statusCode, approved.body).toBe(200)
    expect(['approved', 'queued']).toContain(approved.json().status)

    await waitFor(() => action(s, proposed[0].id), (a) => a.status === 'succeeded')
    expect(callsTo('/manual')).toHaveLength(1)
    const [request] = callsTo('/manual')
    const { secret } = (await call(ctx.app, s.org.token, { method: 'GET', url: '/v1/webhook-secret' })).json()
    const timestamp = Number(request!.headers['x-autopilot-timestamp'])
    expect(Math.abs(timestamp - Date.now() / 1000)).toBeLessThan(60)
    expect(request!.headers['x-autopilot-action-id']).toBe(proposed[0].id)
    const signed = `${timestamp}.${proposed[0].id}.${request!.body}`
    expect(request!.headers['x-autopilot-signature']).toBe(`sha256=${createHmac('sha256', secret).update(signed).digest('hex')}`)
    expect(JSON.parse(request!.body)).toEqual({ restart: 'api' })

    // The metric is back to normal after the action: verification says recovered and resolves the incident.
    await sleep(100)
    await samples(s.key, Array.from({ length: 5 }, (_, i) => steady(i)))
    await waitFor(() => action(s, proposed[0].id), (a) => a.verification.state !== 'pending')
    expect((await action(s, proposed[0].id)).verification.state).toBe('recovered')
    const incident = (await call(ctx.app, s.key, { method: 'GET', url: `/v1/incidents/${incidentId}` })).json()
    expect(incident).toMatchObject({ status: 'resolved', resolvedBy: 'auto' })

    const trail = (await auditActions(ctx.app, s.org, `&resourceType=action&resourceId=${proposed[0].id}`)).map((e) => e.action).reverse()
    expect(trail).toEqual(['action.proposed', 'action.approved', 'action.started', 'action.succeeded', 'action.verified'])
  })

  it('a runbook cooldown holds when several incidents of the service open at once', async () => {
    const s = await setup()
    const created = await call(ctx.app, s.org.token, {
      method: 'POST',
      url: `/v1/services/${s.serviceId}/runbooks`,
      payload: { name: 'page', match: {}, action: { type: 'webhook', params: { url: `${receiver.url}/cooldown` } }, approval: 'manual', cooldownSeconds: 600 }
    })
    expect(created.statusCode, created.body).toBe(201)
    // Eight alerts with different keys: eight incidents of one service, opened concurrently.
    const opened = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        call(ctx.app, s.key, { method: 'POST', url: '/v1/alerts', payload: { service: 'api', dedupKey: `burst-${i}`, title: `burst ${i}`, severity: 'critical', action: 'trigger' } })
      )
    )
    expect(opened.map((r) => r.statusCode)).toEqual(Array(8).fill(202))
    const proposed = (await call(ctx.app, s.key, { method: 'GET', url: '/v1/actions' })).json().items
    expect(proposed).toHaveLength(1)
  })

  it('an auto runbook executes without approval on the team plan and waits on the free plan', async () => {
    const team = await setup('team')
    await runbook(team, '/auto-team', 'auto')
    const teamIncident = await openIncident(team)
    const [teamAction] = (await call(ctx.app, team.key, { method: 'GET', url: `/v1/actions?incidentId=${teamIncident}` })).json().items
    await waitFor(() => action(team, teamAction.id), (a) => a.status === 'succeeded')
    expect(callsTo('/auto-team')).toHaveLength(1)
    expect((await action(team, teamAction.id)).approvedBy).toMatch(/^runbook:/)

    const free = await setup('free')
    await runbook(free, '/auto-free', 'auto')
    const freeIncident = await openIncident(free)
    const [freeAction] = (await call(ctx.app, free.key, { method: 'GET', url: `/v1/actions?incidentId=${freeIncident}` })).json().items
    expect(freeAction).toMatchObject({ status: 'pending_approval', statusReason: expect.stringContaining('free plan does not allow auto-remediation') })
    await sleep(600)
    expect(callsTo('/auto-free')).toHaveLength(0)
  })

  it('the same job enqueued twice, or redelivered, calls the webhook once', async () => {
    const s = await setup()
    const incidentId = await openIncident(s)
    const proposed = await call(ctx.app, s.operator, {
      method: 'POST',
      url: `/v1/incidents/${incidentId}/actions`,
      payload: { type: 'webhook', params: { url: `${receiver.url}/twice` }, reason: 'restart' }
    })
    expect(proposed.statusCode, proposed.body).toBe(201)
    const id = proposed.json().id
    await call(ctx.app, s.operator, { method: 'POST', url: `/v1/actions/${id}/approve` })
    // Extra jobs for the same action, under other job ids: the status guard must stop them.
    await Promise.all([1, 2, 3].map((n) => ctx.app.queues.actions.add('execute', { actionId: id }, { jobId: `${id}-dup-${n}` })))
    await waitFor(() => action(s, id), (a) => a.status === 'succeeded')
    await sleep(700)
    expect(callsTo('/twice')).toHaveLength(1)
  })

  it('retries 5xx with backoff and succeeds; a 4xx fails at once without retry', async () => {
    const s = await setup()
    const incidentId = await openIncident(s)
    script.set('/flaky', [500, 503])
    script.set('/broken', [400])
    const propose = (path: string) =>
      call(ctx.app, s.operator, { method: 'POST', url: `/v1/incidents/${incidentId}/actions`, payload: { type: 'webhook', params: { url: `${receiver.url}${path}` } } })
    const flaky = (await propose('/flaky')).json().id
    const broken = (await propose('/broken')).json().id
    await call(ctx.app, s.operator, { method: 'POST', url: `/v1/actions/${flaky}/approve` })
    await call(ctx.app, s.operator, { method: 'POST', url: `/v1/actions/${broken}/approve` })
    await waitFor(() => action(s, flaky), (a) => a.status === 'succeeded')
    expect(await action(s, flaky)).toMatchObject({ attempts: 3, result: { httpStatus: 200 } })
    expect(callsTo('/flaky')).toHaveLength(3)
    await waitFor(() => action(s, broken), (a) => a.status === 'failed')
    expect(await action(s, broken)).toMatchObject({ attempts: 1, error: 'webhook answered HTTP 400', verification: { state: 'skipped' } })
    expect(callsTo('/broken')).toHaveLength(1)
  })

  it('dry runs record what would be done', async () => {
    const s = await setup()
    const incidentId = await openIncident(s)
    const id = (
      await call(ctx.app, s.operator, { method: 'POST', url: `/v1/incidents/${incidentId}/actions`, payload: { type: 'dry_run', params: { scale: 3 } } })
    ).json().id
    await call(ctx.app, s.operator, { method: 'POST', url: `/v1/actions/${id}/approve` })
    await waitFor(() => action(s, id), (a) => a.status === 'succeeded')
    expect((await action(s, id)).result).toEqual({ dryRun: true, wouldRun: { type: 'dry_run', params: { scale: 3 } } })
  })
})

describe('approval rules', () => {
  let s: Setup
  let incidentId: string
  beforeAll(async () => {
    s = await setup()
    incidentId = await openIncident(s)
  })
  const propose = (token: string, params: object = { url: `${receiver.url}/rules` }) =>
    call(ctx.app, token, { method: 'POST', url: `/v1/incidents/${incidentId}/actions`, payload: { type: 'webhook', params } })

  it('refuses webhook hosts outside the allow-list at proposal and in runbooks', async () => {
    const problem = expectProblem(await propose(s.operator, { url: 'http://example.com/hook' }), 400, 'validation_failed')
    expect(problem.errors).toEqual([{ path: '/body/params/url', message: 'host is not in WEBHOOK_ALLOWED_HOSTS' }])
    const rb = await call(ctx.app, s.org.token, {
      method: 'POST',
      url: `/v1/services/${s.serviceId}/runbooks`,
      payload: { name: 'x', match: {}, action: { type: 'webhook', params: { url: 'http://10.0.0.1/hook' } } }
    })
    expectProblem(rb, 400, 'validation_failed')
    expectProblem(await propose(s.operator, { url: `${receiver.url}/x`, headers: { 'X-Autopilot-Signature': 'forged' } }), 400, 'validation_failed')
  })

  it('reject; approve after reject or twice → 409; below operator → 403; other tenant → 404', async () => {
    const id = (await propose(s.operator)).json().id
    const other = await signup(ctx.app)
    expectProblem(await call(ctx.app, other.token, { method: 'POST', url: `/v1/actions/${id}/approve` }), 404, 'not_found')
    expectProblem(await call(ctx.app, other.token, { method: 'GET', url: `/v1/actions/${id}` }), 404, 'not_found')
    expectProblem(await call(ctx.app, s.key, { method: 'POST', url: `/v1/actions/${id}/approve` }), 403, 'forbidden')
    expectProblem(await call(ctx.app, s.key, { method: 'POST', url: `/v1/incidents/${incidentId}/actions`, payload: {} }), 403, 'forbidden')

    const rejected = await call(ctx.app, s.operator, { method: 'POST', url: `/v1/actions/${id}/reject`, payload: { reason: 'not now' } })
    expect(rejected.json()).toMatchObject({ status: 'rejected', statusReason: 'not now' })
    expectProblem(await call(ctx.app, s.operator, { method: 'POST', url: `/v1/actions/${id}/approve` }), 409, 'invalid_transition')
    expectProblem(await call(ctx.app, s.operator, { method: 'POST', url: `/v1/actions/${id}/reject`, payload: { reason: 'again' } }), 409, 'invalid_transition')
    expect(callsTo('/rules')).toHaveLength(0)
  })
})

describe('expiry', () => {
  const short = useApp({ WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', ACTION_APPROVAL_TTL_SECONDS: '1' })
  it('a pending action expires after its TTL; approving it then is 409 and the timer records the expiry', async () => {
    const org = await signup(short.app)
    const key = (await apiKey(short.app, org)).key
    await call(short.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'exp', detection: { minSamples: 5, confirmSeconds: 0 } } })
    const send = (values: number[]) =>
      call(short.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: values.map((value) => ({ service: 'exp', metric: 'm', value })) } })
    await call(short.app, key, { method: 'POST', url: '/v1/metrics', payload: { samples: warmSamples('exp', 'm', 10, { stepMs: 300_000 }) } })
    const incidentId = (await send([900])).json().incidents[0].id
    const id = (
      await call(short.app, org.token, { method: 'POST', url: `/v1/incidents/${incidentId}/actions`, payload: { type: 'dry_run', params: {} } })
    ).json().id
    await sleep(1200)
    expectProblem(await call(short.app, org.token, { method: 'POST', url: `/v1/actions/${id}/approve` }), 409, 'invalid_transition')
    // The worker of the first app sweeps every organization's actions.
    await waitFor(async () => (await call(short.app, key, { method: 'GET', url: `/v1/actions/${id}` })).json().status, (st) => st === 'expired')
  })
})
