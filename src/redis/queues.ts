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

/** Every queue on one connection (`failFast` as for createQueue). */
export function createQueues(connection: ConnectionOptions, prefix: string, failFast = false): Queues {
  return {
    actions: createQueue('actions', connection, prefix, failFast),
    timers: createQueue('timers', connection, prefix, failFast),
    maintenance: createQueue('maintenance', connection, prefix, failFast)
  }
}

/** `failFast`: for producers serving HTTP requests, which must not wait for a Redis that is down. */
export function createQueue<N extends QueueName>(name: N, connection: ConnectionOptions, prefix: string, failFast = false): TypedQueue<N> {
  return new Queue<QueuePayload<N>, unknown, JobName<N>>(name, {
    connection,
    prefix,
    skipWaitingForReady: failFast,
    defaultJobOptions: JOB_OPTIONS
  })
}

/** Writes Postgres refused that must not be lost, replayed by the worker (src/jobs/dlq.ts), and those it gave up on. */
export const DLQ_STREAM = 'audit:dlq'
export const DEAD_LETTER_STREAM = 'audit:dead-letter'
