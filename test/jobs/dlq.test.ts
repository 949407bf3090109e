import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDb } from '../../src/db/client.js'
import { DEAD_LETTER_STREAM, DLQ_STREAM, LEGACY_DLQ_STREAMS, startReplayer, type DeferredOutcome } from '../../src/jobs/dlq.js'
import { freePort, startRedis } from '../servers.js'

describe('{audit}:dlq replayer', () => {
  let server: Awaited<ReturnType<typeof startRedis>>
  beforeAll(async () => {
    server = await startRedis()
  })
  afterAll(async () => {
    await server.stop()
  })

  it('keeps an entry while Postgres is unreachable, however many deliveries that takes', async () => {
    const redis = new Redis(server.url)
    // Nothing listens on this port: every write fails with ECONNREFUSED.
    const unreachable = createDb(`postgres://postgres@127.0.0.1:${await freePort()}/autopilot`, { max: 1 })
    const id = randomUUID()
    const entry: DeferredOutcome = {
      kind: 'action_outcome',
      organizationId: randomUUID(),
      actionId: id,
      set: { status: 'succeeded', result: null, error: null, attempts: 1, finishedAt: new Date().toISOString() },
      ctx: { organizationId: randomUUID(), actor: { type: 'system', id: null }, requestId: undefined },
      audit: { id: randomUUID(), action: 'action.succeeded', resourceType: 'action', resourceId: id }
    }
    await redis.xadd(DLQ_STREAM, '*', 'entry', JSON.stringify(entry))
    const stop = startReplayer({ db: unreachable.db, redis, log: pino({ level: 'silent' }), consumer: 'test', maxDeliveries: 2, idleMs: 50 })
    try {
      // Long enough for many more deliveries than the limit (the backoff starts at 0.5 s).
      await sleep(4000)
      const [pending] = (await redis.xpending(DLQ_STREAM, 'replayers', '-', '+', 1)) as [string, string, number, number][]
      expect(pending?.[3]).toBeGreaterThan(2)
      expect(await redis.xlen(DLQ_STREAM)).toBe(1)
      expect(await redis.xlen(DEAD_LETTER_STREAM)).toBe(0)
    } finally {
      await stop()
      await unreachable.pool.end()
      redis.disconnect()
    }
  })

  it('takes over, at start, what waits under the streams\' names from before their hash tag, in order', async () => {
    await server.flushAll()
    const redis = new Redis(server.url)
    const unreachable = createDb(`postgres://postgres@127.0.0.1:${await freePort()}/autopilot`, { max: 1 })
    const legacyDlq = LEGACY_DLQ_STREAMS[DLQ_STREAM]
    const legacyDead = LEGACY_DLQ_STREAMS[DEAD_LETTER_STREAM]
    expect([legacyDlq, legacyDead]).toEqual(['audit:dlq', 'audit:dead-letter'])
    expect([DLQ_STREAM, DEAD_LETTER_STREAM]).toEqual(['{audit}:dlq', '{audit}:dead-letter'])
    for (const n of [1, 2, 3]) await redis.xadd(legacyDlq, '*', 'entry', JSON.stringify({ n }))
    await redis.xadd(legacyDead, '*', 'entry', '{}', 'error', 'refused', 'from', '1-1')
    const stop = startReplayer({ db: unreachable.db, redis, log: pino({ level: 'silent' }), consumer: 'test', idleMs: 50 })
    try {
      await expect.poll(() => redis.xlen(legacyDlq)).toBe(0)
      expect((await redis.xrange(DLQ_STREAM, '-', '+')).map(([, fields]) => fields)).toEqual([1, 2, 3].map((n) => ['entry', JSON.stringify({ n })]))
      expect(await redis.xlen(legacyDead)).toBe(0)
      expect((await redis.xrange(DEAD_LETTER_STREAM, '-', '+')).map(([, fields]) => fields)).toEqual([['entry', '{}', 'error', 'refused', 'from', '1-1']])
    } finally {
      await stop()
      await unreachable.pool.end()
      redis.disconnect()
    }
  })
})
