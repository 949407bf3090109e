import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { keys } from '../../src/redis/keys.js'
import { apiKey, signup, type Org } from '../helpers.js'
import { startRedisCluster } from '../servers.js'
import { openEventStream } from '../sse.js'
import { appOn, failedOver, masterOf, replicated, type TestCluster } from './shard-helpers.js'

/*
 * Issue 14: event streams on a Redis Cluster. One XREAD over several organizations' streams is CROSSSLOT
 * there; the reader runs one read per slot, at the master serving it, and a lost master ends only the
 * streams read there (they resume with Last-Event-ID).
 */
describe('GET /v1/events on a Redis Cluster', () => {
  let cluster: TestCluster
  let app: FastifyInstance
  let base: string
  /** Organizations whose event streams lie on three different masters, with an API key each. */
  let tenants: { org: Org; key: string; master: number }[]
  beforeAll(async () => {
    cluster = await startRedisCluster()
    await replicated(cluster)
    app = await appOn(cluster)
    await app.listen({ port: 0, host: '127.0.0.1' })
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    const byMaster = new Map<number, Org>()
    while (byMaster.size < 3) {
      const org = await signup(app)
      const master = await masterOf(cluster, keys.events(org.organizationId))
      if (!byMaster.has(master)) byMaster.set(master, org)
    }
    tenants = await Promise.all([...byMaster].map(async ([master, org]) => ({ org, master, key: (await apiKey(app, org)).key })))
  }, 60_000)
  afterAll(async () => {
    await app?.close()
    await cluster?.stop()
  })

  const openStream = (token: string, lastEventId?: string) => openEventStream(base, token, lastEventId)
  type Stream = ReturnType<typeof openStream>

  const opened = async (stream: Stream) => {
    await vi.waitFor(() => expect(stream.status).not.toBe(0), { timeout: 5000, interval: 20 })
    expect(stream.status).toBe(200)
    await sleep(100) // its subscription is in place once the head is written
  }
  const publish = (org: Org, n: number) => app.services.publish(org.organizationId, [{ type: 'incident.updated', data: { org: org.organizationId, n } }])
  const received = (stream: Stream) => stream.events.map((event) => event.data.n)
  const receives = (stream: Stream, ns: number[]) => vi.waitFor(() => expect(received(stream)).toEqual(ns), { timeout: 5000, interval: 20 })

  it('streams of organizations on three masters each get their own events, and resume with Last-Event-ID', async () => {
    const streams = tenants.map(({ key }) => openStream(key))
    for (const stream of streams) await opened(stream)

    for (const n of [1, 2]) for (const { org } of tenants) await publish(org, n)
    for (const [i, stream] of streams.entries()) {
      await receives(stream, [1, 2])
      expect(stream.events.every((event) => event.data.org === tenants[i]!.org.organizationId)).toBe(true)
    }

    // The first organization's client goes away after event 2; events 3 and 4 come meanwhile.
    const { org, key } = tenants[0]!
    streams[0]!.close()
    const lastSeen = streams[0]!.events.at(-1)!.id
    await publish(org, 3)
    await publish(org, 4)
    const resumed = openStream(key, lastSeen)
    await opened(resumed)
    await publish(org, 5)
    await receives(resumed, [3, 4, 5])
    // The others went on undisturbed, and saw none of it.
    await publish(tenants[1]!.org, 3)
    await receives(streams[1]!, [1, 2, 3])
    expect(received(streams[2]!)).toEqual([1, 2])
    for (const stream of [resumed, ...streams]) stream.close()
  })

  it("a killed master ends only the streams read there; they resume with Last-Event-ID at the promoted replica", async () => {
    const streams = tenants.map(({ key }) => openStream(key))
    for (const stream of streams) await opened(stream)
    for (const { org } of tenants) await publish(org, 10)
    for (const stream of streams) await receives(stream, [10])
    await sleep(300) // replicated (asynchronously: an event not yet on the replica would be lost with its master)

    const [victim, ...others] = tenants
    await cluster.kill(victim!.master)
    await vi.waitFor(() => expect(streams[0]!.ended).toBe(true), { timeout: 5000, interval: 20 })
    // The other masters' reads go on.
    for (const [i, { org }] of others.entries()) {
      await publish(org, 11)
      await receives(streams[i + 1]!, [10, 11])
      expect(streams[i + 1]!.ended).toBe(false)
    }

    await failedOver(cluster, victim!.master)
    const resumed = openStream(victim!.key, streams[0]!.events.at(-1)!.id)
    await opened(resumed)
    await publish(victim!.org, 11)
    await receives(resumed, [11])
    for (const stream of [resumed, ...streams]) stream.close()
  }, 60_000)
})
