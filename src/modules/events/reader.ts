import { Redis, type Cluster } from 'ioredis'
import { duplicateClient, isCluster, type RedisClient } from '../../redis/client.js'
import { errors } from '../../errors.js'
import { keys } from '../../redis/keys.js'

/** How long a subscriber waits for events at most; an SSE stream re-checks its credential at least this often. */
export const EVENT_BLOCK_MS = 5_000
/**
 * The shared read's BLOCK: a newly watched organization wakes it with CLIENT UNBLOCK, and should that
 * wake-up cross the read on its way, the organization joins the next read, at most this much later.
 */
const SHARED_BLOCK_MS = 1_000
/** Events per organization per read, shared or backlog: at most about 410 KiB (data ≤ 8 KiB each). */
const READ_COUNT = 50
/**
 * Bytes of events one stream may hold for its consumer: those waiting plus the batch being written. Past
 * it the consumer has fallen behind and its stream ends (it resumes with Last-Event-ID).
 */
export const STREAM_BUFFER_BYTES = 1024 * 1024

export interface StreamedEvent {
  id: string
  type: string
  /** the event's JSON, as published */
  data: string
}

export interface StreamCaps {
  /** open streams of one credential (API key or user) in this process */
  perCredential: number
  /** open streams of one organization in this process */
  perOrganization: number
}

export interface EventSubscription {
  /**
   * The next events: a page of the backlog, those waiting, or those that come within `waitMs` (none if
   * nothing came, or once the subscription ended). Rejects when Redis is unavailable.
   */
  next(waitMs: number): Promise<StreamedEvent[]>
  /** Aborted when the subscription ends: closed, its consumer fell behind, or Redis failed. */
  readonly signal: AbortSignal
  /** True once more than STREAM_BUFFER_BYTES waited for the consumer. */
  readonly fellBehind: boolean
  /** Ends the subscription and frees its slot; idempotent. */
  close(): void
}

type Entry = [id: string, fields: string[]]
const eventOf = ([id, fields]: Entry): StreamedEvent => ({ id, type: fields[fields.indexOf('type') + 1]!, data: fields[fields.indexOf('data') + 1]! })
const bytesOf = (event: StreamedEvent) => event.id.length + event.type.length + Buffer.byteLength(event.data)

/** Orders stream ids (`<ms>-<seq>`, either part may exceed 2^53). */
function compareIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split('-').map(BigInt) as [bigint, bigint]
  const [bMs, bSeq] = b.split('-').map(BigInt) as [bigint, bigint]
  if (aMs !== bMs) return aMs < bMs ? -1 : 1
  return aSeq === bSeq ? 0 : aSeq < bSeq ? -1 : 1
}

interface Subscriber {
  /** an event of the shared read, in stream order */
  push(event: StreamedEvent): void
  fail(err: unknown): void
}

/** An organization's stream as the shared read follows it: every event up to `cursor` went to `subscribers`. */
interface Watch {
  cursor: string
  subscribers: Set<Subscriber>
}

/**
 * One blocking read and the streams it follows: on one server, every watched stream; on a cluster, those
 * of one hash slot (a multi-key command must keep to one slot), read at the master serving that slot.
 */
interface Group {
  watched: Map<string, Watch>
  reading: boolean
  /** on a cluster: this group's slot, and while it reads, its connection and the node that connection is to */
  slot?: number
  connection?: Redis
  node?: string
  readerId?: number
}

/**
 * The organizations' event streams, read for all the process's subscribers by one connection: a blocking
 * XREAD over the streams of the organizations that have subscribers, each from the last id read, fanned
 * out to them. A subscriber that resumes from before that id first pages through its backlog on the
 * normal connection. Open subscriptions are capped per credential and per organization.
 *
 * On a Redis Cluster the streams of different organizations lie in different slots (often on different
 * masters), and XREAD, CLIENT ID and CLIENT UNBLOCK keep to one slot or one node: there is one such read
 * per slot with watched streams, each on a standalone connection to the master the cluster client's map
 * names for it when the read starts. That connection is not reconnected: should it fail or be answered
 * MOVED (a failover, a resharding), the read's subscribers fail and resume with Last-Event-ID, as on any
 * Redis error, and the next read goes where the refreshed map says.
 */
export function createEventStreams(deps: { redis: RedisClient; caps: StreamCaps }) {
  const { redis, caps } = deps
  const openByCredential = new Map<string, number>()
  const openByOrganization = new Map<string, number>()
  /** On one server: the only group. */
  const everything: Group = { watched: new Map(), reading: false }
  /** On a cluster: the groups by slot, while they have watched streams. */
  const bySlot = new Map<number, Group>()
  let reader: RedisClient | undefined
  let readerId: number | undefined

  function readerConnection(): RedisClient {
    if (reader) return reader
    const connection = duplicateClient(redis, { connectionName: 'autopilot:events', commandTimeout: SHARED_BLOCK_MS + 2000, enableOfflineQueue: true, lazyConnect: false })
    // Its failures reach the subscribers through the read; ids are per connection, so a reconnect forgets it.
    connection.on('error', () => {})
    connection.on('close', () => (readerId = undefined))
    connection.on('ready', () => {
      if (!isCluster(connection)) connection.client('ID').then((id) => (readerId = id), () => {})
    })
    reader = connection
    return connection
  }

  /** A connection for one slot's read, to the master serving it now (a replica or another master answers MOVED). */
  function slotConnection(cluster: Cluster, group: Group): Redis {
    const node = cluster.slots[group.slot!]?.[0]
    if (!node) throw errors.unavailable(`no Redis Cluster master known for slot ${group.slot}`)
    const colon = node.lastIndexOf(':')
    const connection = new Redis({
      ...cluster.options.redisOptions,
      host: node.slice(0, colon),
      port: Number(node.slice(colon + 1)),
      connectionName: 'autopilot:events',
      commandTimeout: SHARED_BLOCK_MS + 2000,
      enableOfflineQueue: true,
      lazyConnect: false,
      retryStrategy: () => null
    })
    connection.on('error', () => {})
    connection.on('ready', () => {
      connection.client('ID').then((id) => group.connection === connection && (group.readerId = id), () => {})
    })
    group.connection = connection
    group.node = node
    return connection
  }

  const wakeReader = (group: Group) => {
    if (!isCluster(redis)) {
      if (readerId !== undefined) redis.client('UNBLOCK', readerId).catch(() => {})
      return
    }
    // CLIENT UNBLOCK goes to the node the read blocks on, through the cluster client's connection to it.
    const node = redis.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === group.node)
    if (group.readerId !== undefined && node) node.client('UNBLOCK', group.readerId).catch(() => {})
  }

  function groupOf(slot: number | undefined): Group {
    if (slot === undefined) return everything
    let group = bySlot.get(slot)
    if (!group) bySlot.set(slot, (group = { watched: new Map(), reading: false, slot }))
    return group
  }

  async function readLoop(group: Group) {
    group.reading = true
    try {
      const connection = isCluster(redis) ? slotConnection(redis, group) : readerConnection()
      while (group.watched.size > 0) {
        const streams = [...group.watched]
        const replies = await connection.xread(
          'COUNT',
          READ_COUNT,
          'BLOCK',
          SHARED_BLOCK_MS,
          'STREAMS',
          ...streams.map(([key]) => key),
          ...streams.map(([, watch]) => watch.cursor)
        )
        for (const [key, entries] of replies ?? []) {
          // Watched anew while this read was out, it may have restarted from a later id.
          const watch = group.watched.get(key)
          for (const entry of watch ? entries : []) {
            if (compareIds(entry[0], watch!.cursor) <= 0) continue
            watch!.cursor = entry[0]
            const event = eventOf(entry)
            for (const subscriber of watch!.subscribers) subscriber.push(event)
          }
        }
      }
    } catch (err) {
      // Redis unavailable: every stream ends, and its client resumes with Last-Event-ID.
      for (const watch of group.watched.values()) for (const subscriber of watch.subscribers) subscriber.fail(err)
      group.watched.clear()
      // A MOVED or a lost master: the cluster client's map may be out of date, and the next read uses it.
      if (isCluster(redis)) redis.refreshSlotsCache()
    } finally {
      group.reading = false
      if (group.slot !== undefined) {
        // Nothing left to read in this slot (the loop ends only then): its connection goes with it.
        group.connection?.disconnect()
        group.connection = group.node = group.readerId = undefined
        if (bySlot.get(group.slot) === group) bySlot.delete(group.slot)
      }
    }
  }

  function startWatching(group: Group, key: string, cursor: string): Watch {
    const watch: Watch = { cursor, subscribers: new Set() }
    group.watched.set(key, watch)
    wakeReader(group)
    return watch
  }

  /** Takes a slot of the credential and of the organization, or refuses with 429; returns its release. */
  function reserve(organizationId: string, credential: string): () => void {
    if ((openByCredential.get(credential) ?? 0) >= caps.perCredential) {
      throw errors.tooManyStreams(`this credential already has ${caps.perCredential} open event streams, the most it may have at once: close one first`)
    }
    if ((openByOrganization.get(organizationId) ?? 0) >= caps.perOrganization) {
      throw errors.tooManyStreams(`the organization already has ${caps.perOrganization} open event streams on this server, the most it may have at once: close one first`)
    }
    const count = (map: Map<string, number>, key: string, delta: number) => {
      const value = (map.get(key) ?? 0) + delta
      if (value === 0) map.delete(key)
      else map.set(key, value)
    }
    count(openByCredential, credential, 1)
    count(openByOrganization, organizationId, 1)
    let held = true
    return () => {
      if (!held) return
      held = false
      count(openByCredential, credential, -1)
      count(openByOrganization, organizationId, -1)
    }
  }

  /**
   * Subscribes `credential` to the organization's events after `lastEventId`, or from now: its position
   * is fixed when this resolves, so nothing published afterwards is missed.
   */
  async function subscribe(organizationId: string, credential: string, lastEventId?: string): Promise<EventSubscription> {
    const release = reserve(organizationId, credential)
    const key = keys.events(organizationId)
    let latest: string
    let slot: number | undefined
    try {
      const [newest, keySlot] = await Promise.all([
        redis.xrevrange(key, '+', '-', 'COUNT', 1),
        isCluster(redis) ? redis.cluster('KEYSLOT', key) : undefined
      ])
      latest = newest[0]?.[0] ?? '0-0'
      slot = keySlot
    } catch (err) {
      release()
      throw err
    }
    // A client cannot have seen an event that does not exist yet.
    const after = lastEventId !== undefined && compareIds(lastEventId, latest) < 0 ? lastEventId : latest
    const group = groupOf(slot)
    const { watched } = group
    const watch = watched.get(key) ?? startWatching(group, key, latest)
    const controller = new AbortController()
    // The shared read delivers what comes after the cursor; what lies between `after` and it is paged.
    let backlog = compareIds(after, watch.cursor) < 0 ? { from: after, to: watch.cursor } : undefined
    let newest = backlog ? watch.cursor : after
    let waiting: StreamedEvent[] = []
    let waitingBytes = 0
    let handedBytes = 0
    let failure: unknown
    let fellBehind = false
    let wake: (() => void) | undefined

    const end = () => {
      watch.subscribers.delete(subscriber)
      if (watch.subscribers.size === 0 && watched.get(key) === watch) watched.delete(key)
      waiting = []
      waitingBytes = 0
      controller.abort()
      wake?.()
    }
    const subscriber: Subscriber = {
      push(event) {
        if (compareIds(event.id, newest) <= 0) return
        newest = event.id
        waiting.push(event)
        waitingBytes += bytesOf(event)
        if (waitingBytes + handedBytes > STREAM_BUFFER_BYTES) {
          fellBehind = true
          end()
        }
        wake?.()
      },
      fail(err) {
        failure = err
        end()
      }
    }
    watch.subscribers.add(subscriber)
    if (!group.reading) void readLoop(group)

    return {
      signal: controller.signal,
      get fellBehind() {
        return fellBehind
      },
      close() {
        if (!controller.signal.aborted) end()
        release()
      },
      async next(waitMs) {
        handedBytes = 0
        if (failure) throw failure
        if (controller.signal.aborted) return []
        if (backlog) {
          const page = await redis.xrange(key, `(${backlog.from}`, backlog.to, 'COUNT', READ_COUNT)
          const last = page.at(-1)?.[0]
          backlog = page.length < READ_COUNT || last === backlog.to ? undefined : { from: last!, to: backlog.to }
          const events = page.map(eventOf)
          handedBytes = events.reduce((sum, event) => sum + bytesOf(event), 0)
          return events
        }
        if (waiting.length === 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, waitMs)
            function done() {
              clearTimeout(timer)
              wake = undefined
              resolve()
            }
            wake = done
          })
        }
        if (failure) throw failure
        const events = waiting
        handedBytes = waitingBytes
        waiting = []
        waitingBytes = 0
        return events
      }
    }
  }

  return {
    subscribe,
    /** Ends the shared read's connection (the streams end first, in the routes' preClose). */
    close() {
      reader?.disconnect()
      reader = undefined
      for (const group of bySlot.values()) group.connection?.disconnect()
    }
  }
}
export type EventStreams = ReturnType<typeof createEventStreams>
