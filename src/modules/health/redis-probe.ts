import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import { withTimeout } from '../../lib/timeout.js'
import { isCluster, type RedisClient } from '../../redis/client.js'

/** What a probe of a Redis Cluster found (absent for a standalone or Sentinel-managed server). */
export interface ClusterReport {
  /** `cluster_state` as the masters report it: `ok` when every master that answered says ok */
  state: string
  /** masters in the client's slot map */
  masters: number
  /** of them, those that answered PING */
  mastersUp: number
  /** of them, those holding the scoring script (state role only) */
  scriptsLoaded?: number
}

export class RedisNotReadyError extends Error {
  override name = 'RedisNotReadyError'
  constructor(
    message: string,
    readonly cluster?: ClusterReport
  ) {
    super(message)
  }
}

/** The SHA1 ioredis sends EVALSHA with for the ingestion's scoring script (src/redis/scripts.ts). */
export const SCORING_SCRIPT_SHA = createHash('sha1')
  .update(readFileSync(new URL('../../redis/scripts/score-samples.lua', import.meta.url), 'utf8'))
  .digest('hex')

const fieldOf = (info: string, name: string) => new RegExp(`^${name}:(\\S*)`, 'm').exec(info)?.[1]

/**
 * Is this Redis ready? A server (standalone or through Sentinel): it answers PING. A Redis Cluster:
 * every master of the slot map answers PING and reports `cluster_state:ok` (CLUSTER INFO): a master down
 * or cut from the majority means a range of slots errors, so "some node answers" would be a lie. Each
 * command is bounded by `timeoutMs`, and they run in parallel. Throws RedisNotReadyError (with the cluster
 * report) when not ready; returns the report of a ready cluster.
 *
 * `scripts` (the state role): also asks every master whether it holds the scoring script (SCRIPT EXISTS).
 * This is reported, not required. Script caches are per node and volatile: a replica promoted by a
 * failover, a restarted master or a fresh cluster starts without it, and the first ingestion that lands
 * there costs one extra round trip (ioredis answers NOSCRIPT with EVAL, which loads it). Failing readiness
 * for it would take every API instance out of the load balancer after any failover, and only ingestion
 * through those instances loads the script: readiness would never come back.
 */
export async function probeRedis(client: RedisClient, timeoutMs: number, options: { scripts?: boolean } = {}): Promise<ClusterReport | undefined> {
  if (!isCluster(client)) {
    await withTimeout(client.ping(), timeoutMs, 'redis')
    return undefined
  }
  const masters = client.nodes('master')
  if (masters.length === 0) throw new RedisNotReadyError(`no master known (cluster client ${client.status})`, { state: 'unknown', masters: 0, mastersUp: 0 })
  const where = (node: Redis) => `${node.options.host}:${node.options.port}`
  const settled = await Promise.all(
    masters.map(async (node) => {
      const [ping, info, scripts] = await Promise.allSettled([
        withTimeout(node.ping(), timeoutMs, `master ${where(node)}`),
        withTimeout(node.cluster('INFO') as Promise<string>, timeoutMs, `master ${where(node)}`),
        options.scripts ? withTimeout(node.script('EXISTS', SCORING_SCRIPT_SHA) as Promise<number[]>, timeoutMs, `master ${where(node)}`) : Promise.resolve([0])
      ])
      return { node, ping, info, scripts }
    })
  )
  const states = settled.flatMap(({ info }) => (info.status === 'fulfilled' ? [fieldOf(info.value, 'cluster_state') ?? 'unknown'] : []))
  const report: ClusterReport = {
    state: states.length === 0 ? 'unknown' : (states.find((state) => state !== 'ok') ?? 'ok'),
    masters: masters.length,
    mastersUp: settled.filter(({ ping }) => ping.status === 'fulfilled').length,
    ...(options.scripts ? { scriptsLoaded: settled.filter(({ scripts }) => scripts.status === 'fulfilled' && scripts.value[0] === 1).length } : {})
  }
  const down = settled.filter(({ ping }) => ping.status === 'rejected')
  if (down.length > 0) {
    const reasons = down.map(({ node, ping }) => `${where(node)}: ${ping.status === 'rejected' ? messageOf(ping.reason) : ''}`)
    throw new RedisNotReadyError(`${down.length} of ${masters.length} masters not answering (${reasons.join('; ')})`, report)
  }
  if (report.state !== 'ok') throw new RedisNotReadyError(`cluster_state:${report.state}`, report)
  return report
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err))
