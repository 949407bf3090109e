import type { TypedQueue } from '../../redis/queues.js'
import { withTimeout } from '../../lib/timeout.js'

/** An approval answers promptly even when the queue Redis hangs; the reconciler sends the job later. */
const ADD_TIMEOUT_MS = 1000

/**
 * Hands approved actions to the execution queue: the job id is the action id (BullMQ ignores a second
 * add of a live job). Returns the ids the queue took; the caller moves those rows approved → queued,
 * and whatever fails here stays `approved` for the reconciler.
 */
export function createEnqueuer(queue: Pick<TypedQueue<'actions'>, 'add'>) {
  return async function enqueue(actionIds: string[]): Promise<string[]> {
    const sent: string[] = []
    for (const actionId of actionIds) {
      try {
        await withTimeout(queue.add('execute', { actionId }, { jobId: actionId }), ADD_TIMEOUT_MS, 'the queue')
        sent.push(actionId)
      } catch {
        break // the queue Redis is unavailable: the rest waits for the reconciler too
      }
    }
    return sent
  }
}
export type Enqueue = ReturnType<typeof createEnqueuer>
