import type { Queue } from 'bullmq'
import { and, eq, inArray } from 'drizzle-orm'
import type { Database } from '../db/client.js'
import { actions } from '../db/schema/index.js'
import { withTimeout } from '../lib/timeout.js'

/** An approval answers promptly even when the queue Redis hangs; the reconciler sends the job later. */
const ADD_TIMEOUT_MS = 1000

export interface ExecuteActionJob {
  actionId: string
}

/**
 * Hands approved actions to the execution queue. The actions table is the outbox: the job id is the
 * action id (BullMQ ignores a second add of a live job), and the row moves approved → queued only after
 * the job is in Redis. Whatever fails here stays `approved` and the reconciler sends it again.
 */
export function createDispatcher(db: Database, queue: Queue<ExecuteActionJob>) {
  return async function dispatch(actionIds: string[]): Promise<string[]> {
    const sent: string[] = []
    for (const actionId of actionIds) {
      try {
        await withTimeout(queue.add('execute', { actionId }, { jobId: actionId }), ADD_TIMEOUT_MS, 'the queue')
        sent.push(actionId)
      } catch {
        break // the queue Redis is unavailable: the rest waits for the reconciler too
      }
    }
    if (sent.length > 0) {
      await db
        .update(actions)
        .set({ status: 'queued', dispatchedAt: new Date(), updatedAt: new Date() })
        .where(and(inArray(actions.id, sent), eq(actions.status, 'approved')))
    }
    return sent
  }
}
export type Dispatch = ReturnType<typeof createDispatcher>
