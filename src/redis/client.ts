import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'

export type RedisRole = 'state' | 'queue'

/** A connection to one of the service's Redis deployments: a server (standalone or Sentinel-managed) or a cluster. */
export type RedisClient = Redis | Cluster

interface Address {
  host: string
  port: number
}

/**
 * Where a role's Redis is, from its URL:
 * - `redis://[user:password@]host:port[/db]` (or `rediss://`, TLS): one standalone server;
 * - `redis+sentinel://[user:password@]sentinel:port,sentinel:port/<master name>[/db]`: the master that
 *   Sentinel names, followed through failovers (the user and password are the master's; sentinels are
 *   asked without them);
 * - `redis+cluster://[user:password@]node:port,node:port`: a Redis Cluster, found from any of its nodes
 *   (a cluster has database 0 only).
 * `rediss+sentinel://` and `rediss+cluster://` connect with TLS.
 */
export type RedisTopology =
  | { kind: 'standalone'; url: string }
  | { kind: 'sentinel'; sentinels: Address[]; name: string; db: number; tls: boolean; username?: string; password?: string }
  | { kind: 'cluster'; nodes: Address[]; tls: boolean; username?: string; password?: string }

export const REDIS_URL_PATTERN = '^(rediss?|rediss?\\+sentinel|rediss?\\+cluster)://'

export class RedisUrlError extends Error {
  override name = 'RedisUrlError'
}

export function parseRedisUrl(url: string): RedisTopology {
  const scheme = /^(rediss?)(?:\+(sentinel|cluster))?:\/\/([^/]*)(\/.*)?$/.exec(url)
  if (!scheme) throw new RedisUrlError('must be a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL')
  const [, base, kind, authority, path = ''] = scheme as unknown as [string, string, string | undefined, string, string | undefined]
  if (kind === undefined) return { kind: 'standalone', url }
  const at = authority.lastIndexOf('@')
  const credentials = at >= 0 ? authority.slice(0, at) : ''
  const [user = '', pass] = credentials.split(':') as [string?, string?]
  const auth = {
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(pass !== undefined ? { password: decodeURIComponent(pass) } : {})
  }
  const hosts = (at >= 0 ? authority.slice(at + 1) : authority).split(',').map((entry): Address => {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):([0-9]{1,5})$/.exec(entry)
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) throw new RedisUrlError(`not a host:port: ${entry || '(empty)'}`)
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) }
  })
  const tls = base === 'rediss'
  if (kind === 'cluster') {
    if (path !== '' && path !== '/' && path !== '/0') throw new RedisUrlError('a cluster has database 0 only')
    return { kind: 'cluster', nodes: hosts, tls, ...auth }
  }
  const [, name, db = '0', ...rest] = path.split('/')
  if (!name || rest.length > 0 || !/^[0-9]{1,2}$/.test(db)) throw new RedisUrlError('a sentinel URL ends with /<master name>[/<db>]')
  return { kind: 'sentinel', sentinels: hosts, name: decodeURIComponent(name), db: Number(db), tls, ...auth }
}

/** The options ioredis takes per connection (for a cluster: per node, under `redisOptions`). */
type ConnectionOptions = Pick<
  RedisOptions,
  'connectionName' | 'commandTimeout' | 'maxRetriesPerRequest' | 'connectTimeout' | 'enableAutoPipelining' | 'keepAlive'
>
/** What a caller may change: per connection, plus the client's own queueing and connecting. */
export type ClientOverrides = ConnectionOptions & Pick<RedisOptions, 'lazyConnect' | 'enableOfflineQueue'>

const retryStrategy = (attempt: number) => Math.min(attempt * 200, 2000)

/**
 * Connections that fail fast: no offline queue (a command while disconnected errors at once) and a
 * per-command timeout (a hung server cannot hang a request). ioredis keeps reconnecting in the background;
 * a Sentinel-managed connection asks the sentinels for the master on every reconnect, and a cluster client
 * follows MOVED/ASK redirections and refreshes its slot map after a failover.
 */
export function createRedis(url: string, role: RedisRole, commandTimeoutMs: number, overrides: ClientOverrides = {}): RedisClient {
  const { lazyConnect = true, enableOfflineQueue = false, ...perConnection } = overrides
  const connection: ConnectionOptions = {
    connectionName: `autopilot:${role}`,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    ...perConnection
  }
  const topology = parseRedisUrl(url)
  switch (topology.kind) {
    case 'standalone':
      return new Redis(url, { ...connection, lazyConnect, enableOfflineQueue, retryStrategy })
    case 'sentinel':
      return new Redis({
        ...connection,
        lazyConnect,
        enableOfflineQueue,
        retryStrategy,
        sentinels: topology.sentinels,
        name: topology.name,
        db: topology.db,
        username: topology.username,
        password: topology.password,
        sentinelRetryStrategy: retryStrategy,
        // A killed master's connection errors at once and the reconnect asks the sentinels; a demoted master
        // that is still up answers writes READONLY: reconnect (to the master the sentinels name now) and
        // resend. (ioredis's failoverDetector is left off: in the Sentinel fault test it ended the queue
        // role's connection for good after a failover, "Connection is closed" on every later command.)
        reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
        ...(topology.tls ? { tls: {}, enableTLSForSentinelMode: true } : {})
      })
    case 'cluster': {
      const options: ClusterOptions = {
        lazyConnect,
        enableOfflineQueue,
        clusterRetryStrategy: retryStrategy,
        // Nodes reconnect by themselves too (ioredis's default leaves a lost node disconnected).
        redisOptions: {
          ...connection,
          username: topology.username,
          password: topology.password,
          ...(topology.tls ? { tls: {} } : {})
        },
        slotsRefreshTimeout: 2000,
        // A slot map that may have changed is refreshed at most this often, beyond MOVED-triggered refreshes.
        slotsRefreshInterval: 5000
      }
      return new Cluster(topology.nodes, options)
    }
  }
}

/** A new client to the same deployment with other per-connection options (a blocking reader, a subscriber). */
export function duplicateClient(client: RedisClient, overrides: ClientOverrides): RedisClient {
  const { lazyConnect, enableOfflineQueue, ...perConnection } = overrides
  if (client instanceof Cluster) {
    return client.duplicate([], {
      ...(lazyConnect !== undefined ? { lazyConnect } : {}),
      ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
      redisOptions: { ...client.options.redisOptions, ...perConnection }
    })
  }
  return client.duplicate(overrides)
}

export const isCluster = (client: RedisClient): client is Cluster => client instanceof Cluster

/** Connects without throwing: a process that starts while Redis is down serves degraded and recovers. */
export async function connectLeniently(client: RedisClient, onError: (err: Error) => void): Promise<void> {
  client.on('error', onError)
  if (client instanceof Cluster) client.on('node error', onError)
  await client.connect().catch(onError)
}
