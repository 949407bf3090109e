import { Backoffs, type BackoffOptions } from 'bullmq'

/**
 * Every retry policy of the service, in one place, all on BullMQ's own exponential backoff (delay ×
 * 2^(attempt−1), optionally jittered), capped.
 */
export const RETRY = {
  /** queued jobs: BullMQ retries them itself */
  job: { attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
  /** a webhook answering 5xx or not at all, within one run of an action */
  webhook: { type: 'exponential', delay: 250, jitter: 0.5, maxMs: 10_000 },
  /** an action's outcome that neither Postgres nor the dead-letter stream took yet */
  outcome: { type: 'exponential', delay: 200, maxMs: 5000 },
  /** the dead-letter replayer while Postgres (or Redis) keeps refusing */
  replay: { type: 'exponential', delay: 500, maxMs: 30_000 }
} as const satisfies Record<string, (BackoffOptions & { maxMs: number }) | { attempts: number; backoff: BackoffOptions }>

/** How long to wait before retry number `attempt` (1 = the first retry). */
export function retryDelay(policy: BackoffOptions & { maxMs: number }, attempt: number): number {
  const delay = Backoffs.builtinStrategies[policy.type]!(policy.delay ?? 0, policy.jitter)(Math.min(attempt, 30), policy.type, new Error('retry'), undefined as never)
  return Math.min(Number(delay), policy.maxMs)
}
