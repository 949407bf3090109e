import { randomUUID } from 'node:crypto'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from './config.js'
import { systemClock, type Clock } from './lib/clock.js'
import { actionRoutes } from './modules/actions/routes.js'
import { alertRoutes } from './modules/alerts/routes.js'
import { apiKeyRoutes } from './modules/api-keys/routes.js'
import { auditRoutes } from './modules/audit/routes.js'
import { authRoutes, meRoutes } from './modules/auth/routes.js'
import { sessionRoutes } from './modules/auth/session-routes.js'
import { backtestRoutes } from './modules/backtest/routes.js'
import { eventRoutes } from './modules/events/routes.js'
import { healthRoutes } from './modules/health/routes.js'
import { ingestRoutes } from './modules/ingest/routes.js'
import { integrationRoutes } from './modules/integrations/routes.js'
import { incidentRoutes } from './modules/incidents/routes.js'
import { serviceRoutes } from './modules/services/routes.js'
import { subscriptionRoutes } from './modules/subscription/routes.js'
import { runbookRoutes } from './modules/runbooks/routes.js'
import { suppressionRoutes } from './modules/suppression/routes.js'
import { userRoutes } from './modules/users/routes.js'
import authPlugin, { requireRole } from './plugins/auth.js'
import dbPlugin from './plugins/db.js'
import docsPlugin from './plugins/docs.js'
import errorsPlugin from './plugins/errors.js'
import { registerIdempotency } from './plugins/idempotency.js'
import { registerCredentialRateLimit, registerIpRateLimit } from './plugins/rate-limit.js'
import { registerQueueDashboard } from './plugins/queue-dashboard.js'
import { registerConsole } from './plugins/console.js'
import metricsPlugin from './plugins/metrics.js'
import queuesPlugin from './plugins/queues.js'
import redisPlugin from './plugins/redis.js'
import servicesPlugin from './plugins/services.js'
import { installValidators } from './plugins/validation.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    /** the time every service and rate limit reads: the system clock, or a test's */
    clock: Clock
  }
}

export const BODY_LIMIT_BYTES = 1024 * 1024

/** The whole API as one plugin: infrastructure first, then the public and the authenticated routes. */
export const autopilot = fp<{ config: Config; clock?: Clock }>(
  async (app, { config, clock = systemClock }) => {
    app.decorate('config', config)
    app.decorate('clock', clock)
    installValidators(app)
    await app.register(errorsPlugin)
    await app.register(dbPlugin, { databaseUrl: config.databaseUrl })
    await app.register(redisPlugin, {
      redisUrl: config.redisUrl,
      queueRedisUrl: config.queueRedisUrl,
      commandTimeoutMs: config.redisCommandTimeoutMs
    })
    await app.register(authPlugin, { ...config.jwt, failuresPerMinute: config.authFailuresPerMinute })
    await app.register(queuesPlugin, { prefix: config.queuePrefix })
    await app.register(servicesPlugin)
    await app.register(docsPlugin)

    await app.register(healthRoutes)
    await app.register(metricsPlugin, { access: config.metricsAccess })
    await registerQueueDashboard(app, config.queueDashboardOrganizationId)
    await registerConsole(app)

    await app.register(
      async (publicApi) => {
        await registerIpRateLimit(publicApi, config.authRateLimitPerMinute)
        await publicApi.register(authRoutes, { accessTtlSeconds: config.jwt.accessTtlSeconds })
        await publicApi.register(sessionRoutes, {
          accessTtlSeconds: config.jwt.accessTtlSeconds,
          refreshTtlSeconds: config.refreshTokenTtlSeconds,
          operatorOrganizationId: config.queueDashboardOrganizationId
        })
      },
      { prefix: '/v1' }
    )

    // Authenticated subtree: authenticate (401) → per-credential rate limit (429) → declared role (403).
    await app.register(
      async (api) => {
        api.addHook('onRoute', requireRole)
        api.addHook('onRequest', api.authenticateHook)
        api.addHook('onRequest', api.csrfHook)
        await registerCredentialRateLimit(api)
        await registerIdempotency(api)
        const features = [
          meRoutes,
          userRoutes,
          apiKeyRoutes,
          subscriptionRoutes,
          serviceRoutes,
          backtestRoutes,
          ingestRoutes,
          alertRoutes,
          integrationRoutes,
          incidentRoutes,
          runbookRoutes,
          actionRoutes,
          suppressionRoutes,
          eventRoutes,
          auditRoutes
        ]
        for (const routes of features) {
          await api.register(routes)
        }
      },
      { prefix: '/v1' }
    )
  },
  { name: 'autopilot' }
)

/**
 * Headers every response carries: the request id, and `connection: close` once the server is closing.
 * Graceful close under load: requests in flight when close starts still finish, but their keep-alive
 * connections must not hold the server open (Node's server.close waits for every connection, and idle
 * ones are only closed once). A callback hook, not an async one: it runs on every response.
 */
function responseHeaders(app: FastifyInstance) {
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onSend', (request, reply, payload, done) => {
    void reply.header('x-request-id', request.id)
    if (closing) void reply.header('connection', 'close')
    done(null, payload)
  })
}

export async function buildApp(config: Config, options: Pick<FastifyServerOptions, 'logger'> & { clock?: Clock } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? {
      level: config.logLevel,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'req.headers["x-csrf-token"]',
          'res.headers["set-cookie"]',
          '*.password',
          '*.refreshToken',
          '*.accessToken',
          '*.key',
          '*.secret',
          '*.webhookSecret'
        ],
        censor: '[redacted]'
      }
    },
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: config.trustProxy as FastifyServerOptions['trustProxy'],
    forceCloseConnections: 'idle',
    return503OnClosing: true
  }).withTypeProvider<TypeBoxTypeProvider>()
  responseHeaders(app)
  await app.register(autopilot, { config, clock: options.clock })
  return app
}
