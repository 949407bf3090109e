import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq'
import { RETRY } from '../lib/retry.js'

type Periodic = Record<string, never>

/**
 * Every queue: its job names and the payload each carries, declared once. Each periodic task is a job
 * name with its own job scheduler (src/jobs/periodic.ts); actions run one job per action, the job id
 * being the action id.
 */
export interface QueueJobs {
  actions: { execute: { actionId: string } }
  timers: { 'auto-resolve': Periodic; 'expire-actions': Periodic; 'flag-abandoned-runs': Periodic; 'verify-actions': Periodic; 'reconcile-dispatch': Periodic }
  maintenance: { 'purge-expired': Periodic }
}
export type QueueName = keyof QueueJobs
export type JobName<N extends QueueName> = keyof QueueJobs[N] & string
export type QueuePayload<N extends QueueName> = QueueJobs[N][JobName<N>]
export type TypedQueue<N extends QueueName> = Queue<QueuePayload<N>, unknown, JobName<N>>

/** Finished jobs are trimmed; double execution is prevented by Postgres status guards, not by job history. */
export const JOB_RETENTION = {
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 7 * 86_400, count: 5000 }
} as const

/** Retry and backoff of every job: BullMQ's own, with the policy from src/lib/retry.ts. */
export const JOB_OPTIONS: JobsOptions = { ...JOB_RETENTION, ...RETRY.job }
/** A periodic job is not retried: its next run, moments later, is the retry. */
export const PERIODIC_JOB_OPTIONS: JobsOptions = { ...JOB_RETENTION, attempts: 1 }

export type Queues = { [N in QueueName]: TypedQueue<N> }

/**
 * The BullMQ prefix of one queue: `{<base>:<queue>}`, base being QUEUE_PREFIX without its braces. BullMQ
 * names every key of a queue `<prefix>:<queue>:…` and its scripts touch many of them at once, so they
 * must share a Redis Cluster slot; a hash tag per queue (rather than one for all) puts the queues in
 * different slots, so they spread over the shards. Queue names stay `actions`, `timers`, `maintenance`.
 */
export function queuePrefix(base: string, queue: QueueName): string {
  return `{${base.replace(/[{}]/g, '')}:${queue}}`
}

/** Every queue on one connection (`failFast` as for createQueue), each under its own prefix (queuePrefix). */
export function createQueues(connection: ConnectionOptions, base: string, failFast = false): Queues {
  return {
    actions: createQueue('actions', connection, base, failFast),
    timers: createQueue('timers', connection, base, failFast),
    maintenance: createQueue('maintenance', connection, base, failFast)
  }
}

/** `base` is QUEUE_PREFIX (see queuePrefix); `failFast`: for producers serving HTTP requests, which must not wait for a Redis that is down. */
export function createQueue<N extends QueueName>(name: N, connection: ConnectionOptions, base: string, failFast = false): TypedQueue<N> {
  return new Queue<QueuePayload<N>, unknown, JobName<N>>(name, {
    connection,
    prefix: queuePrefix(base, name),
    skipWaitingForReady: failFast,
    defaultJobOptions: JOB_OPTIONS
  })
}

/**
 * Writes Postgres refused that must not be lost, replayed by the worker (src/jobs/dlq.ts), and those it
 * gave up on. One hash tag, so the replayer's MULTI that moves an entry from one to the other stays on one
 * Redis Cluster slot.
 */
export const DLQ_STREAM = '{audit}:dlq'
export const DEAD_LETTER_STREAM = '{audit}:dead-letter'
/** Their names before the hash tag: the replayer moves what it finds there into the streams above at start. */
export const LEGACY_DLQ_STREAMS = { [DLQ_STREAM]: 'audit:dlq', [DEAD_LETTER_STREAM]: 'audit:dead-letter' } as const
