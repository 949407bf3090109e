import type { Redis } from 'ioredis'
import { keys } from '../../redis/keys.js'

/** How long a read waits for events; an SSE stream re-checks its credential at least this often. */
export const EVENT_BLOCK_MS = 5_000

export interface StreamedEvent {
  id: string
  type: string
  /** the event's JSON, as published */
  data: string
}

/**
 * Reads an organization's event stream for one subscriber: from after `lastEventId`, or from now. Each
 * reader blocks on Redis for up to `blockMs`, so it has a connection of its own; `close` ends it.
 */
export function createEventReader(deps: { redis: Pick<Redis, 'duplicate' | 'xrevrange'>; blockMs: number }) {
  return async function open(organizationId: string, lastEventId?: string) {
    const key = keys.events(organizationId)
    let lastId = lastEventId ?? (await deps.redis.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0'
    const connection = deps.redis.duplicate({ commandTimeout: deps.blockMs + 2000, enableOfflineQueue: true, lazyConnect: false })
    connection.on('error', () => {})
    return {
      /** The next events, or none after blockMs; throws when Redis is unavailable. */
      async next(): Promise<StreamedEvent[]> {
        const batch = await connection.xread('COUNT', 100, 'BLOCK', deps.blockMs, 'STREAMS', key, lastId)
        const events: StreamedEvent[] = []
        for (const [, entries] of batch ?? []) {
          for (const [id, fields] of entries) {
            events.push({ id, type: fields[fields.indexOf('type') + 1]!, data: fields[fields.indexOf('data') + 1]! })
            lastId = id
          }
        }
        return events
      },
      close: () => connection.disconnect()
    }
  }
}
export type OpenEventStream = ReturnType<typeof createEventReader>
