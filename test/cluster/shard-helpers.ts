import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../helpers.js'
import { onNode, type startRedisCluster } from '../servers.js'

export type TestCluster = Awaited<ReturnType<typeof startRedisCluster>>

/** A probe to a live master (the caller disconnects it). */
async function probe(cluster: TestCluster) {
  const client = new Redis({ port: (await cluster.mastersNow())[0], host: '127.0.0.1', maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  return client
}

/**
 * Waits until the cluster has its 3 masters, each with a replica in sync (`redis-cli --cluster create`
 * returns before the replicas are attached), so that killing a master promotes its replica.
 */
export async function replicated(cluster: TestCluster, masters = 3) {
  for (let i = 0; i < 200; i++) {
    const ports = await cluster.mastersNow().catch((): number[] => [])
    if (ports.length === masters) {
      const linked = await Promise.all(
        ports.map((port) =>
          onNode(port, async (client) => {
            const info = await client.info('replication')
            return /connected_slaves:[1-9]/.test(info) && /slave0:.*state=online/.test(info)
          }).catch(() => false)
        )
      )
      if (linked.every(Boolean)) return
    }
    await sleep(100)
  }
  throw new Error('the cluster did not get its replicas')
}

/** The port of the master serving `key` (or a shard channel) now. */
export async function masterOf(cluster: TestCluster, key: string): Promise<number> {
  const client = await probe(cluster)
  try {
    const slot = Number(await client.cluster('KEYSLOT', key))
    const slots = await client.cluster('SLOTS')
    return slots.find(([from, to]) => slot >= from && slot <= to)![2]![1]
  } finally {
    client.disconnect()
  }
}

/** An API instance with both roles on the cluster. */
export async function appOn(cluster: TestCluster, overrides: Record<string, string> = {}): Promise<FastifyInstance> {
  const app = await buildApp(testConfig({ REDIS_URL: cluster.url, QUEUE_REDIS_URL: cluster.url, ...overrides }), {
    logger: process.env.TEST_LOGS ? { level: 'warn' } : false
  })
  await app.ready()
  return app
}

/**
 * Waits until `victim` (killed) was replaced: the cluster has its masters again, none of them the victim,
 * and each of them sees the cluster ok. (`cluster.settled()` also waits for every master to have a replica,
 * which the promoted one, whose master is dead, does not get.)
 */
export async function failedOver(cluster: TestCluster, victim: number, masters = 3) {
  for (let i = 0; i < 300; i++) {
    const ports = await cluster.mastersNow().catch((): number[] => [])
    if (ports.length === masters && !ports.includes(victim)) {
      const states = await Promise.all(
        ports.map((port) => onNode(port, async (client) => /cluster_state:ok/.test((await client.cluster('INFO')) as string)).catch(() => false))
      )
      if (states.every(Boolean)) return
    }
    await sleep(100)
  }
  throw new Error(`no replica took over from ${victim}`)
}
