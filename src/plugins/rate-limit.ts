import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../errors.js'
import { keys } from '../redis/keys.js'
import { PLAN_LIMITS } from '../modules/subscription/plans.js'


const tooMany = (_req: FastifyRequest, context: { ttl: number }) => errors.rateLimited(Math.max(1, Math.ceil(context.ttl / 1000)))

/**
 * Per-credential limit for the authenticated API, sized by the organization's plan. Registered inside the
 * authenticated subtree after its onRequest authentication hook, so the principal is known.
 * When Redis is unavailable the limit is skipped rather than failing every request.
 */
export async function registerCredentialRateLimit(api: FastifyInstance) {
  await api.register(rateLimit, {
    redis: api.redis,
    nameSpace: `${keys.rateLimitPrefix}cred:`,
    skipOnError: true,
    timeWindow: 60_000,
    keyGenerator: (request) => `${request.principal.kind}:${request.principal.id}`,
    max: async (request) => PLAN_LIMITS[await api.plans.planOf(request.principal.organizationId)].requestsPerMinute,
    errorResponseBuilder: tooMany
  })
}

/** Per-client-IP limit for the unauthenticated auth routes (credential stuffing, signup spam). */
export async function registerIpRateLimit(api: FastifyInstance, perMinute: number) {
  await api.register(rateLimit, {
    redis: api.redis,
    nameSpace: `${keys.rateLimitPrefix}ip:`,
    skipOnError: true,
    timeWindow: 60_000,
    max: perMinute,
    errorResponseBuilder: tooMany
  })
}
