import type { Job, Queue, Worker } from 'bullmq'
import type { Logger } from 'pino'
import { withTimeout } from '../lib/timeout.js'

export interface SupervisorOptions {
  /** how often the queue is looked at */
  checkEveryMs: number
  /** jobs waiting this long while the worker had free slots and started none: the worker is replaced */
  stuckAfterMs: number
  /** how long a replaced worker may take to close before it is left behind */
  closeTimeoutMs: number
  /** how long close() waits for running jobs before it force-closes (a stuck worker's close never ends) */
  shutdownTimeoutMs: number
  concurrency: number
  log: Pick<Logger, 'warn'>
}

export type Processor<T> = (job: Job<T>, token?: string) => Promise<unknown>

/**
 * A BullMQ worker that is replaced when it stops consuming. BullMQ leaves reconnection to ioredis, and after
 * a Redis Cluster master died a worker has been seen to stay "running" without ever fetching a job again,
 * its close() hanging too (upstream: taskforcesh/bullmq#3088, #3185, where the maintainers advise closing
 * such a worker and creating a new one). The supervisor does exactly that when jobs have waited
 * `stuckAfterMs` while the worker had free slots and started none (a paused queue is left alone). The old
 * worker is force-closed without waiting past `closeTimeoutMs`. Nothing runs twice for it: an action
 * runs only under its Postgres lease (execute-action.ts), and a periodic task is idempotent.
 */
export function supervisedWorker<T>(queue: Queue, create: (processor: Processor<T>) => Worker<T>, processor: Processor<T>, opts: SupervisorOptions) {
  let running = 0
  let started = 0
  const counted: Processor<T> = async (job, token) => {
    running++
    started++
    try {
      return await processor(job, token)
    } finally {
      running--
    }
  }
  let worker = create(counted)
  let replacements = 0
  /** since when jobs have been waiting with no start, and the start count then */
  let waitingSince: { at: number; started: number } | undefined

  async function check() {
    const [waiting, paused] = await Promise.all([queue.getWaitingCount(), queue.isPaused()])
    const now = Date.now()
    if (waiting === 0 || paused || running >= opts.concurrency || started !== waitingSince?.started) {
      waitingSince = waiting === 0 || paused ? undefined : { at: now, started }
      return
    }
    if (now - waitingSince.at < opts.stuckAfterMs) return
    opts.log.warn({ queue: queue.name, waiting, waitedMs: now - waitingSince.at }, 'worker started no job while jobs waited: replacing it')
    const stuck = worker
    worker = create(counted)
    replacements++
    waitingSince = undefined
    await withTimeout(stuck.close(true), opts.closeTimeoutMs, `closing the stuck ${queue.name} worker`).catch(() => undefined)
  }

  let checking = false
  const timer = setInterval(() => {
    if (checking) return
    checking = true
    // A queue Redis that does not answer is no evidence against the worker.
    check()
      .catch(() => undefined)
      .finally(() => (checking = false))
  }, opts.checkEveryMs)
  timer.unref()

  return {
    current: () => worker,
    replacements: () => replacements,
    async close() {
      clearInterval(timer)
      await withTimeout(worker.close(), opts.shutdownTimeoutMs, `closing the ${queue.name} worker`).catch((err: Error) => {
        opts.log.warn({ queue: queue.name, err: err.message }, 'worker did not close in time: force-closing it')
        void worker.close(true).catch(() => undefined)
      })
    }
  }
}
