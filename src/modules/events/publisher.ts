import type { Redis } from 'ioredis'
import { keys, TTL } from '../../redis/keys.js'

export const EVENT_TYPES = ['anomaly.detected', 'incident.opened', 'incident.updated', 'incident.resolved', 'action.updated'] as const
export type EventType = (typeof EVENT_TYPES)[number]
export interface AppEvent {
  type: EventType
  data: unknown
}

/** Roughly how many events each organization's stream keeps (besides the 1h TTL of the key). */
export const EVENTS_MAXLEN = 10_000

/**
 * Appends events to the organization's stream. Events are notifications: Postgres already holds the
 * state they describe, so a failure here is reported and the caller carries on.
 */
export function createEventPublisher(redis: Redis, onError: (err: unknown) => void) {
  return async function publish(organizationId: string, events: AppEvent[]): Promise<void> {
    if (events.length === 0) return
    const key = keys.events(organizationId)
    const pipeline = redis.pipeline()
    for (const event of events) {
      pipeline.xadd(key, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'type', event.type, 'data', JSON.stringify(event.data))
    }
    pipeline.pexpire(key, TTL.eventsMs)
    const replies = await pipeline.exec().catch((err) => {
      onError(err)
      return null
    })
    const failed = replies?.find(([err]) => err)
    if (failed) onError(failed[0])
  }
}
export type PublishEvents = ReturnType<typeof createEventPublisher>
