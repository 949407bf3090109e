import { connect, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { keys } from '../../src/redis/keys.js'
import { apiKey, signup, useApp, type Org } from '../helpers.js'
import { openEventStream } from '../sse.js'

/*
 * Issue 13, item 12: an SSE stream held a Redis connection of its own, streams were not capped, and a
 * consumer that stopped reading made the API buffer every event for it. Now one connection per process
 * reads for every stream, streams are capped per credential and per organization, and a consumer that
 * stops reading is disconnected with a bounded buffer.
 */
// A database of its own: CLIENT LIST entries with db=12 are this app's connections, whatever else runs.
const DB = 12
const ctx = useApp({ REDIS_URL: `redis://127.0.0.1:6379/${DB}`, EVENT_STREAMS_PER_CREDENTIAL: '3', EVENT_STREAMS_PER_ORGANIZATION: '4' })

let base: string
let admin: Redis
beforeAll(async () => {
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  base = `http://127.0.0.1:${(ctx.app.server.address() as { port: number }).port}`
  admin = new Redis('redis://127.0.0.1:6379/0')
})
afterAll(async () => {
  await admin?.quit()
})

/** An SSE request over the real port: its status once answered, its events, its problem body otherwise. */
const openStream = (token: string, lastEventId?: string) => openEventStream(base, token, lastEventId)
type Stream = ReturnType<typeof openStream>

const answered = (stream: Stream) => vi.waitFor(() => expect(stream.status).not.toBe(0), { timeout: 5000, interval: 20 })

/** This app's Redis connections, as the server lists them. */
async function appConnections() {
  const list = (await admin.client('LIST')) as string
  return list.split('\n').filter((line) => line.includes(` db=${DB} `)).length
}

/** Publishes `count` events of about `bytes` bytes of data each to the organization, numbered from `from`. */
async function publishNumbered(org: Org, from: number, count: number, bytes = 100) {
  for (let start = from; start < from + count; start += 100) {
    const batch = Array.from({ length: Math.min(100, from + count - start) }, (_, i) => ({
      type: 'incident.updated' as const,
      data: { n: start + i, filler: 'x'.repeat(bytes) }
    }))
    await ctx.app.services.publish(org.organizationId, batch)
  }
}

/**
 * A raw client that reads the response head of its stream, then never reads again; `server` is the API's
 * end of its connection.
 */
async function stalledConsumer(token: string) {
  const sockets: Socket[] = []
  const onConnection = (socket: Socket) => sockets.push(socket)
  ctx.app.server.on('connection', onConnection)
  const client = connect({ host: '127.0.0.1', port: (ctx.app.server.address() as { port: number }).port })
  client.on('error', () => {})
  client.write(`GET /v1/events HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\naccept: text/event-stream\r\n\r\n`)
  const head = await new Promise<string>((resolve) => client.once('data', (chunk: Buffer) => resolve(chunk.toString())))
  client.pause()
  ctx.app.server.off('connection', onConnection)
  expect(head).toMatch(/^HTTP\/1.1 200/)
  return { client, server: sockets.find((socket) => socket.remotePort === client.localPort)! }
}

describe('GET /v1/events: caps, one shared reader, slow consumers', () => {
  it('caps open streams per credential and per organization (429), and frees a slot when a stream closes', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const open = [openStream(key), openStream(key), openStream(key)]
    for (const stream of open) await answered(stream)
    expect(open.map((s) => s.status)).toEqual([200, 200, 200])

    const fourth = openStream(key)
    await answered(fourth)
    expect(fourth.status).toBe(429)
    expect(JSON.parse(fourth.body)).toMatchObject({ status: 429, code: 'too_many_streams', detail: expect.stringContaining('this credential already has 3 open event streams') })

    // Another credential of the organization has slots of its own, up to the organization's 4.
    const owner = openStream(org.token)
    await answered(owner)
    expect(owner.status).toBe(200)
    const second = openStream((await apiKey(ctx.app, org)).key)
    await answered(second)
    expect(second.status).toBe(429)
    expect(JSON.parse(second.body)).toMatchObject({ code: 'too_many_streams', detail: expect.stringContaining('the organization already has 4 open event streams') })

    // A stream that closes frees its slot.
    open[0]!.close()
    await vi.waitFor(
      async () => {
        const again = openStream(key)
        await answered(again)
        if (again.status !== 200) again.close()
        expect(again.status).toBe(200)
        open.push(again)
      },
      { timeout: 5000, interval: 100 }
    )
    for (const stream of [...open, owner]) stream.close()
  })

  it('streams of many credentials and organizations share one Redis connection, and each gets its own events', async () => {
    const orgs = await Promise.all([signup(ctx.app), signup(ctx.app), signup(ctx.app)])
    const first = openStream((await signup(ctx.app)).token)
    await answered(first)
    await new Promise((resolve) => setTimeout(resolve, 200))
    const before = await appConnections()

    const streams = new Map<Org, Stream[]>()
    for (const org of orgs) {
      const keys = await Promise.all([apiKey(ctx.app, org), apiKey(ctx.app, org)])
      streams.set(org, keys.flatMap(({ key }) => [openStream(key), openStream(key)]))
    }
    const all = [...streams.values()].flat()
    for (const stream of all) await answered(stream)
    expect(all.map((s) => s.status)).toEqual(all.map(() => 200))
    await new Promise((resolve) => setTimeout(resolve, 200))
    // 12 more streams of 6 credentials in 3 organizations: no more connections than with one.
    expect(await appConnections()).toBe(before)

    for (const [index, org] of orgs.entries()) {
      await ctx.app.services.publish(org.organizationId, [{ type: 'incident.opened', data: { org: index } }])
    }
    for (const [index, org] of orgs.entries()) {
      for (const stream of streams.get(org)!) {
        await vi.waitFor(() => expect(stream.events.length).toBeGreaterThan(0), { timeout: 5000, interval: 20 })
        expect(stream.events.map((e) => e.data)).toEqual([{ org: index }])
      }
    }
    for (const stream of [first, ...all]) stream.close()
  })

  it('disconnects a consumer that stops reading while large events pour in, with a bounded buffer for it', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    const { client, server } = await stalledConsumer(key)
    let mostBuffered = 0
    const sampler = setInterval(() => (mostBuffered = Math.max(mostBuffered, server.writableLength)), 5)
    try {
      // About 32 MB, far more than the kernel's socket buffers on both ends hold.
      await publishNumbered(org, 0, 4000, 8000)
      await vi.waitFor(() => expect(server.destroyed).toBe(true), { timeout: 20_000, interval: 50 })
    } finally {
      clearInterval(sampler)
      client.destroy()
      await ctx.app.redis.del(keys.events(org.organizationId))
    }
    // Never more than a socket's high-water mark and one event waited in the API's buffer for it.
    expect(mostBuffered).toBeLessThan(64 * 1024)

    // Its slot is free again: the credential opens its 3 streams.
    const again = [openStream(key), openStream(key), openStream(key)]
    for (const stream of again) await answered(stream)
    expect(again.map((s) => s.status)).toEqual([200, 200, 200])
    for (const stream of again) stream.close()
  })

  it('disconnects a consumer whose socket has not drained for 10 s, though few events wait for it', async () => {
    const org = await signup(ctx.app)
    const { client, server } = await stalledConsumer((await apiKey(ctx.app, org)).key)
    try {
      // Just enough to fill the kernel's buffers (the API's end starts to hold data), then nothing more.
      for (let n = 0; n < 4000 && server.writableLength === 0; n += 5) {
        await publishNumbered(org, n, 5, 8000)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      expect(server.writableLength).toBeGreaterThan(0)
      const stalledAt = Date.now()
      await new Promise((resolve) => setTimeout(resolve, 8000))
      expect(server.destroyed).toBe(false)
      await vi.waitFor(() => expect(server.destroyed).toBe(true), { timeout: 5000, interval: 50 })
      expect(Date.now() - stalledAt).toBeLessThan(12_000)
    } finally {
      client.destroy()
      await ctx.app.redis.del(keys.events(org.organizationId))
    }
  })

  it('resumes with Last-Event-ID from behind the shared reader: every event once, in order, while more are published', async () => {
    const org = await signup(ctx.app)
    const key = (await apiKey(ctx.app, org)).key
    // A live stream keeps the organization in the shared read, whose position moves past the backlog.
    const live = openStream(org.token)
    await answered(live)
    await publishNumbered(org, 0, 180)
    await vi.waitFor(() => expect(live.events).toHaveLength(180), { timeout: 10_000, interval: 20 })

    // Resume after event 9: 170 events of backlog (several pages) while 120 more are published.
    const resumed = openStream(key, live.events[9]!.id)
    const publishing = (async () => {
      for (let from = 180; from < 300; from += 10) {
        await publishNumbered(org, from, 10)
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })()
    await answered(resumed)
    expect(resumed.status).toBe(200)
    await publishing
    const expected = Array.from({ length: 290 }, (_, i) => i + 10)
    await vi.waitFor(() => expect(resumed.events.length).toBeGreaterThanOrEqual(expected.length), { timeout: 10_000, interval: 20 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(resumed.events.map((e) => e.data.n)).toEqual(expected)
    await vi.waitFor(() => expect(live.events).toHaveLength(300), { timeout: 10_000, interval: 20 })
    expect(live.events.map((e) => e.data.n)).toEqual(Array.from({ length: 300 }, (_, i) => i))
    // The ids are the stream's: the resumed events are the live stream's from the 11th on.
    expect(resumed.events.map((e) => e.id)).toEqual(live.events.slice(10).map((e) => e.id))

    // A Last-Event-ID from the future is taken as "now", not as a position nothing will ever pass.
    const future = openStream(key, '99999999999999-0')
    await answered(future)
    await publishNumbered(org, 300, 1)
    await vi.waitFor(() => expect(future.events.map((e) => e.data.n)).toEqual([300]), { timeout: 5000, interval: 20 })
    for (const stream of [live, resumed, future]) stream.close()
  })
})
