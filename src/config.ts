import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { parseRedisUrl, REDIS_URL_PATTERN, RedisUrlError } from './redis/client.js'
import Type, { type Static } from 'typebox'
import Value from 'typebox/value'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Actions one worker process runs at once (the BullMQ concurrency of its actions queue). */
export const ACTION_SLOTS = 5

const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('test'), Type.Literal('production')], {
    default: 'development'
  }),
  DATABASE_URL: Type.String({ pattern: '^postgres(ql)?://', default: 'postgres://postgres@127.0.0.1:5432/autopilot' }),
  /** redis://, redis+sentinel://…/<master> or redis+cluster://node,node (see src/redis/client.ts) */
  REDIS_URL: Type.String({ pattern: REDIS_URL_PATTERN, default: 'redis://127.0.0.1:6379/0' }),
  QUEUE_REDIS_URL: Type.Optional(Type.String({ pattern: REDIS_URL_PATTERN })),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  LOG_LEVEL: Type.Enum(LOG_LEVELS, { default: 'info' }),
  WEBHOOK_ALLOWED_HOSTS: Type.String({ default: '' }),
  /**
   * The organization that operates this deployment: only its admins may open the queue dashboard, which
   * shows and controls every tenant's jobs. Unset, the dashboard is off (404).
   */
  QUEUE_DASHBOARD_ORGANIZATION_ID: Type.Optional(Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' })),
  /** Base of each BullMQ queue's prefix ({<base>:<queue>}, braces stripped: one hash tag per queue); tests give each run its own. */
  QUEUE_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:{}_-]+$', default: '{autopilot}' }),
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 30, maximum: 86_400, default: 900 }),
  REFRESH_TOKEN_TTL_SECONDS: Type.Integer({ minimum: 300, maximum: 31_536_000, default: 2_592_000 }),
  /** Requests per minute per client IP on the unauthenticated auth routes (signup, login, refresh). */
  AUTH_RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 1, default: 30 }),
  /**
   * Failed authentications (unknown or revoked API keys, bad tokens) per client address per minute, per
   * process; past it the address gets 429 before any lookup.
   */
  AUTH_FAILURES_PER_MINUTE: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 60 }),
  /**
   * Which proxies' X-Forwarded-For to believe for the client address (rate limits per address use it):
   * unset, none (the socket's peer is the client); a number, that many hops in front of the API; or a
   * comma-separated list of proxy addresses and CIDR ranges. Never `true`: any client could then choose
   * its own address.
   */
  TRUST_PROXY: Type.Optional(Type.String({ pattern: '^(?:[0-9]{1,2}|[0-9a-fA-F.:/]{2,49}(?:,[0-9a-fA-F.:/]{2,49}){0,63})$' })),
  /** How often the worker runs its timers (auto-resolve, expiry, leases, verification, outbox dispatch). */
  SWEEP_INTERVAL_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 5000 }),
  /** A worker that started no job while jobs waited this long, with slots free, is replaced (src/jobs/supervisor.ts). */
  WORKER_STALL_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 30 }),
  ACTION_APPROVAL_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 7 * 86_400, default: 3600 }),
  ACTION_LEASE_SECONDS: Type.Integer({ minimum: 1, maximum: 86_400, default: 120 }),
  /** Verification reads the 1 h anomaly window, so it must end well within it. */
  VERIFICATION_WINDOW_SECONDS: Type.Integer({ minimum: 0, maximum: 3000, default: 300 }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000 }),
  WEBHOOK_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 10, default: 4 }),
  /**
   * Actions of one organization a worker process runs at once; fewer than its slots, so one tenant's
   * slow webhooks always leave room for the others' (the rest wait, deferred).
   */
  ACTION_CONCURRENCY_PER_ORGANIZATION: Type.Integer({ minimum: 1, maximum: ACTION_SLOTS - 1, default: 2 }),
  /**
   * Bearer token that GET /metrics requires (its figures span every tenant). Unset, /metrics is open in
   * development and test, and off (404) in production.
   */
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 32, maxLength: 512 })),
  /** Open event streams (GET /v1/events) of one credential, API key or user, per API process; past it, 429. */
  EVENT_STREAMS_PER_CREDENTIAL: Type.Integer({ minimum: 1, maximum: 1000, default: 5 }),
  /** Open event streams of one organization per API process, at least the per-credential cap; past it, 429. */
  EVENT_STREAMS_PER_ORGANIZATION: Type.Integer({ minimum: 1, maximum: 100_000, default: 50 }),
  /** Upper bound for any single Redis command; a hung Redis must not hang a request. */
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000 })
})

type Env = Static<typeof EnvSchema>

export interface Config {
  env: Env['NODE_ENV']
  databaseUrl: string
  redisUrl: string
  queueRedisUrl: string
  queuePrefix: string
  /** the operating organization, whose admins may open the queue dashboard (off when undefined) */
  queueDashboardOrganizationId: string | undefined
  jwt: { secret: string; issuer: string; audience: string; accessTtlSeconds: number }
  refreshTokenTtlSeconds: number
  authRateLimitPerMinute: number
  authFailuresPerMinute: number
  /** what GET /metrics asks for: a bearer token, nothing (open), or it is off */
  metricsAccess: { token: string } | 'open' | 'off'
  /** Fastify's trustProxy: false, or proxy addresses and ranges */
  trustProxy: false | string[]
  redisCommandTimeoutMs: number
  sweepIntervalMs: number
  workerStallSeconds: number
  /** caps of open event streams in one API process */
  eventStreams: { perCredential: number; perOrganization: number }
  actions: {
    approvalTtlSeconds: number
    leaseSeconds: number
    verificationWindowSeconds: number
    webhookTimeoutMs: number
    webhookMaxAttempts: number
    /** running actions per organization in one worker process, below ACTION_SLOTS */
    concurrencyPerOrganization: number
  }
  port: number
  host: string
  logLevel: Env['LOG_LEVEL']
  webhookAllowedHosts: string[]
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Reads and validates the environment once; the only place that touches process.env. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  const env = Value.Default(EnvSchema, Value.Convert(EnvSchema, raw)) as Env
  const errors = [...Value.Errors(EnvSchema, env)]
  if (errors.length > 0) {
    const problems = errors.map((e) => `${e.instancePath.slice(1) || 'environment'}: ${e.message}`)
    throw new ConfigError(`invalid configuration — ${[...new Set(problems)].join('; ')}`)
  }

  if (env.EVENT_STREAMS_PER_ORGANIZATION < env.EVENT_STREAMS_PER_CREDENTIAL) {
    throw new ConfigError(
      `invalid configuration — EVENT_STREAMS_PER_ORGANIZATION: must be at least EVENT_STREAMS_PER_CREDENTIAL (${env.EVENT_STREAMS_PER_CREDENTIAL})`
    )
  }

  for (const [name, url] of [['REDIS_URL', env.REDIS_URL], ['QUEUE_REDIS_URL', env.QUEUE_REDIS_URL]] as const) {
    if (url === undefined) continue
    try {
      parseRedisUrl(url)
    } catch (err) {
      if (err instanceof RedisUrlError) throw new ConfigError(`invalid configuration — ${name}: ${err.message}`)
      throw err
    }
  }

  let jwtSecret = env.JWT_SECRET
  if (jwtSecret === undefined) {
    if (env.NODE_ENV !== 'development') {
      throw new ConfigError(`invalid configuration — JWT_SECRET: required outside development (at least 32 characters)`)
    }
    jwtSecret = randomBytes(32).toString('base64url')
    console.warn('JWT_SECRET is not set: generated a random one for this development process; tokens will not survive a restart')
  }

  return {
    env: env.NODE_ENV,
    databaseUrl: env.DATABASE_URL,
    redisUrl: env.REDIS_URL,
    queueRedisUrl: env.QUEUE_REDIS_URL ?? env.REDIS_URL,
    queuePrefix: env.QUEUE_PREFIX,
    queueDashboardOrganizationId: env.QUEUE_DASHBOARD_ORGANIZATION_ID,
    jwt: { secret: jwtSecret, issuer: 'autopilot', audience: 'autopilot-api', accessTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS },
    refreshTokenTtlSeconds: env.REFRESH_TOKEN_TTL_SECONDS,
    authRateLimitPerMinute: env.AUTH_RATE_LIMIT_PER_MINUTE,
    authFailuresPerMinute: env.AUTH_FAILURES_PER_MINUTE,
    metricsAccess: env.METRICS_TOKEN !== undefined ? { token: env.METRICS_TOKEN } : env.NODE_ENV === 'production' ? 'off' : 'open',
    trustProxy: trustProxyOf(env.TRUST_PROXY),
    redisCommandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
    sweepIntervalMs: env.SWEEP_INTERVAL_MS,
    workerStallSeconds: env.WORKER_STALL_SECONDS,
    eventStreams: { perCredential: env.EVENT_STREAMS_PER_CREDENTIAL, perOrganization: env.EVENT_STREAMS_PER_ORGANIZATION },
    actions: {
      approvalTtlSeconds: env.ACTION_APPROVAL_TTL_SECONDS,
      leaseSeconds: env.ACTION_LEASE_SECONDS,
      verificationWindowSeconds: env.VERIFICATION_WINDOW_SECONDS,
      webhookTimeoutMs: env.WEBHOOK_TIMEOUT_MS,
      webhookMaxAttempts: env.WEBHOOK_MAX_ATTEMPTS,
      concurrencyPerOrganization: env.ACTION_CONCURRENCY_PER_ORGANIZATION
    },
    port: env.PORT,
    host: env.HOST,
    logLevel: env.LOG_LEVEL,
    webhookAllowedHosts: env.WEBHOOK_ALLOWED_HOSTS.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)
  }
}

function trustProxyOf(value: string | undefined): Config['trustProxy'] {
  if (value === undefined) return false
  // Fastify (5.12) trusts no proxy on a hop count alone, since it cannot tell a proxy from a client that
  // sends the headers itself: a number would silently trust nobody.
  if (/^[0-9]+$/.test(value)) {
    throw new ConfigError('invalid configuration — TRUST_PROXY: a hop count is not trusted (Fastify cannot tell a proxy from a client by count); list the proxies\' addresses or CIDR ranges')
  }
  const entries = value.split(',')
  const invalid = entries.filter((entry) => !isAddressOrRange(entry))
  if (invalid.length > 0) throw new ConfigError(`invalid configuration — TRUST_PROXY: not an address or CIDR range: ${invalid.join(', ')}`)
  return entries
}

function isAddressOrRange(entry: string): boolean {
  const [address, bits, ...rest] = entry.split('/')
  const version = isIP(address!)
  if (version === 0 || rest.length > 0) return false
  return bits === undefined || (/^[0-9]{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128))
}

/** Only the database URL: what the migrator needs (it must not require the API's secrets). */
export function loadDatabaseUrl(source: Record<string, string | undefined> = process.env): string {
  const schema = Type.Object({ DATABASE_URL: EnvSchema.properties.DATABASE_URL })
  const env = Value.Default(schema, { ...(source.DATABASE_URL ? { DATABASE_URL: source.DATABASE_URL } : {}) }) as { DATABASE_URL: string }
  if (!Value.Check(schema, env)) throw new ConfigError('invalid configuration — DATABASE_URL: must be a postgres:// URL')
  return env.DATABASE_URL
}

/** For process entries: a bad environment ends the process with a message naming the variable. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig()
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : err)
    process.exit(1)
  }
}
