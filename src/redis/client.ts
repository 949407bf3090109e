import { Redis, type RedisOptions } from 'ioredis'

export type RedisRole = 'state' | 'queue'

/**
 * Connections that fail fast: no offline queue (a command while disconnected errors at once) and a
 * per-command timeout (a hung server cannot hang a request). ioredis keeps reconnecting in the background.
 */
export function createRedis(url: string, role: RedisRole, commandTimeoutMs: number, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    connectionName: `autopilot:${role}`,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    ...extra
  })
}

/** Connects without throwing: a process that starts while Redis is down serves degraded and recovers. */
export async function connectLeniently(client: Redis, onError: (err: Error) => void): Promise<void> {
  client.on('error', onError)
  await client.connect().catch(onError)
}
