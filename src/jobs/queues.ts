import { Queue, type ConnectionOptions } from 'bullmq'

/** Queue names and the payload each one carries. */
export interface QueuePayloads {
  maintenance: Record<string, never>
  timers: Record<string, never>
  actions: { actionId: string }
}
export type QueueName = keyof QueuePayloads

export const QUEUE_NAMES: QueueName[] = ['actions', 'timers', 'maintenance']

/** Finished jobs are trimmed; double execution is prevented by Postgres status guards, not by job history. */
export const JOB_RETENTION = {
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 7 * 86_400, count: 5000 }
} as const

/** `failFast`: for producers serving HTTP requests, which must not wait for a Redis that is down. */
export function createQueue<N extends QueueName>(name: N, connection: ConnectionOptions, prefix: string, failFast = false) {
  return new Queue<QueuePayloads[N], unknown, string>(name, {
    connection,
    prefix,
    skipWaitingForReady: failFast,
    defaultJobOptions: { ...JOB_RETENTION, attempts: 3, backoff: { type: 'exponential', delay: 1000 } }
  })
}
