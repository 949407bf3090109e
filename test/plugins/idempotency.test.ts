import { describe, expect, it } from 'vitest'
import { and, eq } from 'drizzle-orm'
import { idempotencyKeys } from '../../src/db/schema/index.js'
import { IN_PROGRESS_LEASE_MS, REDACTED } from '../../src/plugins/idempotency.js'
import { apiKey, call, expectProblem, signup, useApp } from '../helpers.js'

const ctx = useApp()

describe('Idempotency-Key', () => {
  it('a repeat returns the first response and changes nothing; another body with the same key → 422', async () => {
    const org = await signup(ctx.app)
    const post = (payload: object, key = 'create-checkout') =>
      call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload, headers: { 'idempotency-key': key } })
    const first = await post({ name: 'checkout' })
    expect(first.statusCode).toBe(201)
    const again = await post({ name: 'checkout' })
    expect(again.statusCode).toBe(201)
    expect(again.headers['idempotent-replayed']).toBe('true')
    expect(again.json()).toEqual(first.json())
    expect((await call(ctx.app, org.token, { method: 'GET', url: '/v1/services' })).json().items).toHaveLength(1)
    expectProblem(await post({ name: 'other' }), 422, 'idempotency_mismatch')
    // Without the header, the duplicate is an ordinary conflict.
    expectProblem(await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'checkout' } }), 409, 'conflict')
    // Keys belong to the organization: another one may use the same key.
    const other = await signup(ctx.app)
    const theirs = await call(ctx.app, other.token, { method: 'POST', url: '/v1/services', payload: { name: 'checkout' }, headers: { 'idempotency-key': 'create-checkout' } })
    expect(theirs.statusCode).toBe(201)
    expect(theirs.json().id).not.toBe(first.json().id)
  })

  it('concurrent duplicates: one runs, the others get 409 or the replay, and one sample batch is counted once', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const service = await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'dedup' } })
    const batch = { samples: Array.from({ length: 5 }, (_, i) => ({ service: 'dedup', metric: 'x', value: i })) }
    const results = await Promise.all(
      Array.from({ length: 6 }, () => call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: batch, headers: { 'idempotency-key': 'batch-1' } }))
    )
    const statuses = results.map((r) => r.statusCode)
    expect(statuses.filter((s) => s === 202).length).toBeGreaterThanOrEqual(1)
    expect(statuses.every((s) => s === 202 || s === 409)).toBe(true)
    const baselines = (await call(ctx.app, key, { method: 'GET', url: `/v1/services/${service.json().id}/baselines` })).json().items
    expect(baselines[0].samples).toBe(5)
    const replay = await call(ctx.app, key, { method: 'POST', url: '/v1/metrics', payload: batch, headers: { 'idempotency-key': 'batch-1' } })
    expect(replay.statusCode).toBe(202)
    expect(replay.headers['idempotent-replayed']).toBe('true')
  })

  it('never stores an API key secret: a replay shows the key redacted', async () => {
    const org = await signup(ctx.app)
    const create = () => call(ctx.app, org.token, { method: 'POST', url: '/v1/api-keys', payload: { name: 'ci', role: 'agent' }, headers: { 'idempotency-key': 'key-1' } })
    const first = await create()
    expect(first.json().key).toMatch(/^dap_/)
    const again = await create()
    expect(again.json()).toMatchObject({ id: first.json().id, key: REDACTED })
    const [row] = (await ctx.app.pg.query('SELECT response_body::text AS body FROM idempotency_keys WHERE key = $1 AND organization_id = $2', ['key-1', org.organizationId])).rows
    expect(row.body).not.toContain(first.json().key)
  })

  it('a key left in progress by a request that never finished is taken over by a retry after its lease', async () => {
    const org = await signup(ctx.app)
    const post = () =>
      call(ctx.app, org.token, { method: 'POST', url: '/v1/suppression-rules', payload: rule, headers: { 'idempotency-key': 'crashed' } })
    const rule = { service: 'batch-*', startsAt: Date.now(), endsAt: Date.now() + 3_600_000, reason: 'nightly reindex' }
    expect((await post()).statusCode).toBe(201)
    // What a process dying mid-request leaves behind: the claim, still in progress.
    const stuck = (ageMs: number) =>
      ctx.app.db
        .update(idempotencyKeys)
        .set({ status: 'in_progress', responseStatus: null, responseBody: null, createdAt: new Date(Date.now() - ageMs) })
        .where(and(eq(idempotencyKeys.organizationId, org.organizationId), eq(idempotencyKeys.key, 'crashed')))
    await stuck(10_000)
    expectProblem(await post(), 409, 'conflict') // it may still be running
    await stuck(IN_PROGRESS_LEASE_MS + 1000)
    const retried = await post()
    expect(retried.statusCode, retried.body).toBe(201)
    expect(retried.headers['idempotent-replayed']).toBeUndefined()
    // The retry's response is now the one replayed.
    const replay = await post()
    expect(replay.headers['idempotent-replayed']).toBe('true')
    expect(replay.json()).toEqual(retried.json())
  })

  it('a malformed key is refused', async () => {
    const org = await signup(ctx.app)
    const res = await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'x' }, headers: { 'idempotency-key': 'x'.repeat(300) } })
    expectProblem(res, 400, 'validation_failed')
  })
})
