import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../errors.js'
import { throttled } from '../lib/throttle.js'
import { PLAN_LIMITS } from '../modules/subscription/plans.js'
import { keys } from '../redis/keys.js'
import { createBatchedRedisStore } from '../redis/rate-limit-store.js'

/** How stale one process's view of the other processes' hits may be. */
const SYNC_MS = 100

const tooMany = (_req: FastifyRequest, context: { ttl: number }) => errors.rateLimited(Math.max(1, Math.ceil(context.ttl / 1000)))

function storeFor(api: FastifyInstance, namespace: string) {
  const store = createBatchedRedisStore(
    api.redis,
    `${keys.rateLimitPrefix}${namespace}`,
    SYNC_MS,
    throttled((err) => api.log.warn({ err }, 'rate-limit counters not synced with Redis')),
    api.clock
  )
  api.addHook('onClose', store.close)
  return store.Store
}

/**
 * Per-credential limit for the authenticated API, sized by the organization's plan. Registered inside the
 * authenticated subtree after its onRequest authentication hook, so the principal is known.
 */
export async function registerCredentialRateLimit(api: FastifyInstance) {
  await api.register(rateLimit, {
    store: storeFor(api, 'cred:'),
    timeWindow: 60_000,
    keyGenerator: (request) => `${request.principal.kind}:${request.principal.id}`,
    max: async (request) => PLAN_LIMITS[await api.services.plans.planOf(request.principal.organizationId)].requestsPerMinute,
    errorResponseBuilder: tooMany
  })
}

/** Per-client-IP limit for the unauthenticated auth routes (credential stuffing, signup spam). */
export async function registerIpRateLimit(api: FastifyInstance, perMinute: number) {
  await api.register(rateLimit, {
    store: storeFor(api, 'ip:'),
    timeWindow: 60_000,
    max: perMinute,
    errorResponseBuilder: tooMany
  })
}
