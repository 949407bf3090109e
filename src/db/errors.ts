/** Drizzle wraps driver errors (DrizzleQueryError); the Postgres code and constraint live on the cause. */
export function driverError(err: unknown): { code?: string; constraint?: string; message?: string } | undefined {
  let current: unknown = err
  for (let depth = 0; depth < 3 && current && typeof current === 'object'; depth++) {
    const candidate = current as { code?: unknown; cause?: unknown }
    if (typeof candidate.code === 'string') return candidate as { code: string }
    current = candidate.cause
  }
  return undefined
}

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const pg = driverError(err)
  return pg?.code === '23505' && (constraint === undefined || pg.constraint === constraint)
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P03', '53300'])

/**
 * Messages of a dependency that is down or moving: a connection lost or timed out; a Redis Cluster between
 * masters (CLUSTERDOWN, TRYAGAIN, a slot map being refreshed, redirections that did not settle); a
 * Sentinel-managed master failing over (READONLY from a demoted master, LOADING, MASTERDOWN, no sentinel).
 */
const REDIS_OR_POSTGRES_UNAVAILABLE = new RegExp(
  [
    'Connection is closed',
    "Stream isn't writeable",
    'Command timed out',
    'timeout exceeded when trying to connect',
    'Connection terminated',
    'CLUSTERDOWN',
    'TRYAGAIN',
    'Too many Cluster redirections',
    'Failed to refresh slots cache',
    'None of startup nodes is available',
    "Cluster isn't ready",
    'Cluster is ended',
    '^READONLY ',
    '^LOADING ',
    '^MASTERDOWN ',
    'All sentinels are unreachable'
  ].join('|')
)

/** Errors thrown by a dependency (Postgres, Redis) that say "try again later", not "you did it wrong". */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const cause = driverError(err)
  if (cause?.code && UNAVAILABLE_CODES.has(cause.code)) return true
  return REDIS_OR_POSTGRES_UNAVAILABLE.test(`${err.message} ${cause?.message ?? ''} ${err.cause instanceof Error ? err.cause.message : ''}`)
}
