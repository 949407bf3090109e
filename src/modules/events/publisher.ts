import type { RedisClient } from '../../redis/client.js'
import { keys, TTL } from '../../redis/keys.js'

export const EVENT_TYPES = ['anomaly.detected', 'incident.opened', 'incident.updated', 'incident.resolved', 'action.updated'] as const
export type EventType = (typeof EVENT_TYPES)[number]
export interface AppEvent {
  type: EventType
  data: unknown
}

/** Roughly how many events each organization's stream keeps (besides the 1h TTL of the key). */
export const EVENTS_MAXLEN = 10_000
/** Bytes of one event's data at most, so a stream holds at most about EVENTS_MAXLEN × this. */
export const MAX_EVENT_DATA_BYTES = 8 * 1024
/** A string field kept in a cut event's data is at most this long. */
const MAX_KEPT_STRING = 512

/**
 * An event's data as published: its JSON when within MAX_EVENT_DATA_BYTES; else only its top-level scalar
 * fields (strings up to 512 characters: the resource's `id`, status, names) with `truncated: true`, and
 * past the bound even so, `{ id, truncated: true }`. The subscriber reads the rest from the API by id.
 */
export function eventDataOf(data: unknown): string {
  const json = JSON.stringify(data) ?? 'null'
  if (Buffer.byteLength(json) <= MAX_EVENT_DATA_BYTES) return json
  const fields = typeof data === 'object' && data !== null ? Object.entries(data) : []
  const scalars = fields.filter(([, value]) =>
    typeof value === 'string' ? value.length <= MAX_KEPT_STRING : value === null || typeof value === 'number' || typeof value === 'boolean'
  )
  const cut = JSON.stringify(Object.fromEntries([...scalars, ['truncated', true]]))
  if (Buffer.byteLength(cut) <= MAX_EVENT_DATA_BYTES) return cut
  const id = scalars.find(([name]) => name === 'id')?.[1]
  return JSON.stringify({ id, truncated: true })
}

/**
 * Appends events to the organization's stream, each cut to MAX_EVENT_DATA_BYTES. Events are notifications: Postgres already holds the
 * state they describe, so a failure here is reported and the caller carries on.
 */
export function createEventPublisher(redis: RedisClient, onError: (err: unknown) => void) {
  return async function publish(organizationId: string, events: AppEvent[]): Promise<void> {
    if (events.length === 0) return
    const key = keys.events(organizationId)
    const pipeline = redis.pipeline()
    for (const event of events) {
      pipeline.xadd(key, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'type', event.type, 'data', eventDataOf(event.data))
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
