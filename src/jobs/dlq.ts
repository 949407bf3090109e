import { setTimeout as sleep } from 'node:timers/promises'
import type { RedisClient } from '../redis/client.js'
import type { Logger } from 'pino'
import type { Database } from '../db/client.js'
import { isUnavailable } from '../db/errors.js'
import { recordOutcome } from '../modules/actions/execution.js'
import type { Outcome } from '../modules/actions/lifecycle.js'
import type { AuditEntry } from '../modules/audit/repository.js'
import type { ChangeContext } from '../lib/context.js'
import { retryDelay, RETRY } from '../lib/retry.js'
import { DEAD_LETTER_STREAM, DLQ_STREAM, LEGACY_DLQ_STREAMS } from '../redis/queues.js'

export { DLQ_STREAM, DEAD_LETTER_STREAM, LEGACY_DLQ_STREAMS }
const GROUP = 'replayers'

/** A write that Postgres refused and that must not be lost: an action outcome with its audit row. */
export interface DeferredOutcome {
  kind: 'action_outcome'
  organizationId: string
  actionId: string
  set: Outcome & { finishedAt: string }
  ctx: ChangeContext
  audit: AuditEntry & { id: string }
}

/** Applies a deferred outcome through the action lifecycle; idempotent (see recordOutcome). */
export async function applyOutcome(db: Database, entry: DeferredOutcome, now = new Date()) {
  const { finishedAt, ...outcome } = entry.set
  await recordOutcome(db, { actionId: entry.actionId, outcome, finishedAt: new Date(finishedAt), ctx: entry.ctx, auditId: entry.audit.id, now })
}

/** Parks a write on the queue Redis (AOF, noeviction) for the replayer. */
export async function deferOutcome(queueRedis: RedisClient, entry: DeferredOutcome) {
  await queueRedis.xadd(DLQ_STREAM, '*', 'entry', JSON.stringify(entry))
}

const ADOPT_BATCH = 100

/**
 * Moves the entries of a stream under its name from before the hash tag (`audit:dlq`, `audit:dead-letter`)
 * into the tagged one, oldest first, so nothing parked by an earlier version is lost. The two names hash
 * to different Redis Cluster slots, so an entry is added to the new stream before it is deleted from the
 * old one, not atomically: a crash in between leaves it in both, and replaying it twice is harmless
 * (applyOutcome is idempotent). The old stream is left in place, empty, for a process of the earlier
 * version that may still write to it during a rolling upgrade; the next replayer start moves those too.
 */
export async function adoptLegacyStream(redis: RedisClient, from: string, to: string): Promise<number> {
  let moved = 0
  for (;;) {
    const entries = await redis.xrange(from, '-', '+', 'COUNT', ADOPT_BATCH)
    if (entries.length === 0) return moved
    for (const [id, fields] of entries) {
      await redis.xadd(to, '*', ...fields)
      await redis.xdel(from, id)
      moved++
    }
  }
}

/**
 * Replays `{audit}:dlq` into Postgres: a consumer group, so several workers share the stream; an entry is
 * deleted only after Postgres confirmed the write; entries a dead consumer left pending are taken over
 * with XAUTOCLAIM; after `maxDeliveries` refused attempts (attempts while Postgres is unreachable do not
 * count) an entry moves to `{audit}:dead-letter` for a person. At start it first takes over what waits
 * under the streams' earlier names (adoptLegacyStream).
 */
export function startReplayer(deps: { db: Database; redis: RedisClient; log: Logger; consumer: string; maxDeliveries?: number; idleMs?: number }) {
  const maxDeliveries = deps.maxDeliveries ?? 20
  const idleMs = deps.idleMs ?? 2000
  let running = true
  let failures = 0
  let adopted = false

  async function adoptLegacy() {
    for (const [to, from] of Object.entries(LEGACY_DLQ_STREAMS)) {
      const moved = await adoptLegacyStream(deps.redis, from, to)
      if (moved > 0) deps.log.warn({ from, to, moved }, 'moved deferred writes from the stream of an earlier version')
    }
    adopted = true
  }

  async function ensureGroup() {
    await deps.redis.xgroup('CREATE', DLQ_STREAM, GROUP, '0', 'MKSTREAM').catch((err: Error) => {
      if (!err.message.includes('BUSYGROUP')) throw err
    })
  }

  async function handle(id: string, fields: string[]) {
    const raw = fields[fields.indexOf('entry') + 1]
    try {
      await applyOutcome(deps.db, JSON.parse(raw!) as DeferredOutcome)
      await deps.redis.multi().xack(DLQ_STREAM, GROUP, id).xdel(DLQ_STREAM, id).exec()
      failures = 0
    } catch (err) {
      failures++
      const [pending] = (await deps.redis.xpending(DLQ_STREAM, GROUP, id, id, 1)) as [string, string, number, number][]
      const deliveries = pending?.[3] ?? 0
      // Postgres being down is a wait, not a verdict on the entry: only refusals count towards the limit.
      if (deliveries >= maxDeliveries && !isUnavailable(err)) {
        await deps.redis
          .multi()
          .xadd(DEAD_LETTER_STREAM, '*', 'entry', raw ?? '', 'error', String(err), 'from', id)
          .xack(DLQ_STREAM, GROUP, id)
          .xdel(DLQ_STREAM, id)
          .exec()
        deps.log.error({ id, err: String(err) }, 'dead-lettered a deferred write after repeated failures')
      }
    }
  }

  const done = (async () => {
    while (running) {
      try {
        if (!adopted) await adoptLegacy()
        await ensureGroup()
        // Entries left pending (by a crashed worker, or a failed replay) come back after idleMs.
        const [, claimed] = (await deps.redis.xautoclaim(DLQ_STREAM, GROUP, deps.consumer, idleMs, '0-0', 'COUNT', 50)) as [string, [string, string[]][]]
        for (const [id, fields] of claimed) if (fields) await handle(id, fields)
        const fresh = (await deps.redis.xreadgroup('GROUP', GROUP, deps.consumer, 'COUNT', 50, 'BLOCK', 1000, 'STREAMS', DLQ_STREAM, '>')) as
          | [string, [string, string[]][]][]
          | null
        for (const [, entries] of fresh ?? []) for (const [id, fields] of entries) await handle(id, fields)
      } catch (err) {
        failures++
        deps.log.warn({ err: String(err) }, 'audit replayer could not read the dead-letter queue')
      }
      // Back off while Postgres (or Redis) keeps refusing: 0.5s, 1s, 2s … up to 30s.
      if (failures > 0 && running) await sleep(retryDelay(RETRY.replay, failures))
    }
  })()

  return async function stop() {
    running = false
    await done
  }
}
