import { setTimeout as sleep } from 'node:timers/promises'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ACTION_SLOTS, loadConfig } from '../../src/config.js'
import { startWorker } from '../../src/worker.js'
import { queuePrefix } from '../../src/redis/queues.js'
import { openIncident } from '../fixtures.js'
import { call, createService, signup, useApp, userWithRole, type Org } from '../helpers.js'
import { startReceiver } from '../receiver.js'

/*
 * Issue 13, item 9: one tenant's slow webhooks must not take every worker slot and stall every other
 * tenant's remediation. An organization runs at most ACTION_CONCURRENCY_PER_ORGANIZATION actions at
 * once; its others wait, deferred (not failed), and each still runs exactly once.
 */
const HOLD_MS = 2500
const ctx = useApp({ WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', WEBHOOK_TIMEOUT_MS: '5000', ACTION_CONCURRENCY_PER_ORGANIZATION: '2' })

/** What the receiver saw: slow calls held and released, and the state of them when the prompt call came. */
const seen = { held: 0, maxHeld: 0, released: 0, prompt: undefined as { held: number; released: number } | undefined }
let receiver: Awaited<ReturnType<typeof startReceiver>>
beforeAll(async () => {
  receiver = await startReceiver(async (_n, request) => {
    if (request.url === '/prompt') seen.prompt ??= { held: seen.held, released: seen.released }
    if (!request.url.startsWith('/slow/')) return 200
    seen.held++
    seen.maxHeld = Math.max(seen.maxHeld, seen.held)
    await sleep(HOLD_MS)
    seen.held--
    seen.released++
    return 200
  })
})
afterAll(async () => {
  await receiver?.close()
})

async function proposeWebhook(org: Org, operator: string, path: string): Promise<string> {
  const service = await createService(ctx.app, org)
  const incident = await openIncident(ctx.app, org, service.id)
  const proposed = await call(ctx.app, operator, { method: 'POST', url: `/v1/incidents/${incident.id}/actions`, payload: { type: 'webhook', params: { url: `${receiver.url}${path}` } } })
  expect(proposed.statusCode, proposed.body).toBe(201)
  return proposed.json().id
}
async function approve(operator: string, id: string) {
  const approved = await call(ctx.app, operator, { method: 'POST', url: `/v1/actions/${id}/approve` })
  expect(approved.statusCode, approved.body).toBe(200)
}
const statusOf = async (org: Org, id: string): Promise<string> => (await call(ctx.app, org.token, { method: 'GET', url: `/v1/actions/${id}` })).json().status

describe('fairness between organizations in the worker', () => {
  it("one organization's held webhooks leave slots for another's action, and each of its own still runs once", async () => {
    const stopWorker = await startWorker(ctx.config)
    const connection = new Redis(ctx.config.queueRedisUrl, { maxRetriesPerRequest: null })
    const queue = new Queue('actions', { connection, prefix: queuePrefix(ctx.config.queuePrefix, 'actions') })
    try {
      // A: one action on each of its five services (one action runs per service), as many as the worker has slots.
      const a = await signup(ctx.app, 'Slow hooks')
      const aOperator = await userWithRole(ctx.app, a, 'operator')
      const slow: string[] = []
      for (let i = 0; i < ACTION_SLOTS; i++) slow.push(await proposeWebhook(a, aOperator, `/slow/${i}`))
      const b = await signup(ctx.app, 'Prompt hooks')
      const bOperator = await userWithRole(ctx.app, b, 'operator')
      const prompt = await proposeWebhook(b, bOperator, '/prompt')

      for (const id of slow) await approve(aOperator, id)
      await expect.poll(() => seen.held, { timeout: 3000, interval: 20 }).toBeGreaterThanOrEqual(2)
      // B's one action is called while A's are all still held, A at its share of the slots.
      await approve(bOperator, prompt)
      await expect.poll(() => seen.prompt, { timeout: HOLD_MS * 2, interval: 20 }).toBeDefined()
      expect(seen.prompt).toEqual({ held: 2, released: 0 })
      await expect.poll(() => statusOf(b, prompt), { timeout: 2000, interval: 50 }).toBe('succeeded')

      // Every A action ends, succeeded, after exactly one call, never more than two at once.
      await expect.poll(async () => (await Promise.all(slow.map((id) => statusOf(a, id)))).every((s) => s === 'succeeded'), { timeout: 15_000, interval: 200 }).toBe(true)
      const calls = receiver.received.filter((r) => r.url.startsWith('/slow/'))
      expect(calls).toHaveLength(ACTION_SLOTS)
      expect(new Set(calls.map((r) => r.headers['x-autopilot-action-id']))).toEqual(new Set(slow))
      expect(seen.maxHeld).toBe(2)

      // Waiting its turn is no failed attempt: one attempt made per job, though some were started (and deferred) more often.
      const jobs = await Promise.all(slow.map((id) => queue.getJob(id)))
      expect(jobs.map((job) => job?.attemptsMade)).toEqual(slow.map(() => 1))
      expect(Math.max(...jobs.map((job) => job!.attemptsStarted))).toBeGreaterThan(1)
    } finally {
      await stopWorker()
      await queue.obliterate({ force: true })
      await queue.close()
      connection.disconnect()
    }
  })

  it("refuses a per-organization share that would let one organization take every slot, naming the variable", () => {
    expect(() => loadConfig({ ...process.env, ACTION_CONCURRENCY_PER_ORGANIZATION: String(ACTION_SLOTS) })).toThrow(/ACTION_CONCURRENCY_PER_ORGANIZATION/)
    expect(() => loadConfig({ ...process.env, ACTION_CONCURRENCY_PER_ORGANIZATION: '0' })).toThrow(/ACTION_CONCURRENCY_PER_ORGANIZATION/)
    expect(loadConfig({ ...process.env, ACTION_CONCURRENCY_PER_ORGANIZATION: undefined }).actions.concurrencyPerOrganization).toBe(2)
  })
})
