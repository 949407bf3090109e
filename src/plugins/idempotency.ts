import { and, eq, lt } from 'drizzle-orm'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { idempotencyKeys } from '../db/schema/index.js'
import { AppError, errors, problemResponses } from '../errors.js'
import { sha256 } from '../lib/crypto.js'
import { appendRouteHook } from '../lib/route-hooks.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** POSTs that create things honour Idempotency-Key; `redact` names response fields never stored. */
    idempotent?: { redact?: string[] }
  }
  interface FastifyRequest {
    idempotency?: { key: string; organizationId: string }
  }
}

const RETENTION_MS = 24 * 3_600_000
/** Longer than any request runs (statements stop at 10 s, Redis commands at 1 s). */
export const IN_PROGRESS_LEASE_MS = 120_000
const KEY = /^[\x21-\x7e]{1,255}$/
export const REDACTED = '[shown only in the first response]'
/** Answers that mean nothing ran: the key is released, so the client's retry after them runs. */
const RELEASING = new Set([402, 429])

/**
 * Idempotency-Key on creating POSTs: the first request with a key is recorded (organization, key, request
 * hash) before it runs; a repeat with the same body gets the first response again, a repeat while the
 * first is still running gets 409, the same key with another body 422 `idempotency_mismatch`. Failures
 * (5xx) and refusals before anything ran (429 rate or quota limits, 402 plan limits) release the key, so
 * the client's retry runs (as Stripe does): only an executed request's answer is kept. Keys are kept 24h.
 */
export async function registerIdempotency(api: FastifyInstance) {
  // Only the routes that declare it get the hooks (callback hooks: without the header they return at
  // once), and their documentation names the header and the 409 and 422 it may answer.
  api.addHook('onRoute', (route) => {
    const options = route.config?.idempotent
    if (!options) return
    if (route.schema) {
      const schema = route.schema as { description?: string; response?: Record<number, unknown> }
      schema.response = { ...schema.response, ...problemResponses(409, 422) }
      schema.description = `${schema.description ? `${schema.description} ` : ''}Honours an Idempotency-Key header (24h): a repeat returns the first response (header idempotent-replayed: true); the same key with another body → 422 idempotency_mismatch; while the first is in flight → 409.`
    }
    appendRouteHook(route, 'preHandler', (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
      const header = request.headers['idempotency-key']
      if (header === undefined) return done()
      // After replaying the first response, `done` must not be called.
      claim(request, reply, Array.isArray(header) ? header[0]! : header).then((replayed) => {
        if (!replayed) done()
      }, done)
    })
    appendRouteHook(route, 'onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: Error | null, payload?: unknown) => void) => {
      if (!request.idempotency) return done(null, payload)
      complete(request, reply, payload, options.redact ?? []).then(() => done(null, payload), done)
    })
  })

  /** Records the key, or replays the first response (then resolves true). */
  async function claim(request: FastifyRequest, reply: FastifyReply, key: string): Promise<boolean> {
    if (!KEY.test(key)) {
      throw errors.validation('Idempotency-Key is invalid', [{ path: '/headers/idempotency-key', message: 'must be 1-255 visible ASCII characters' }])
    }
    const organizationId = request.principal.organizationId
    const scope = `${request.method} ${request.routeOptions.url}`
    const requestHash = sha256(`${scope}\n${request.url}\n${JSON.stringify(request.body ?? null)}`)
    const now = new Date()
    // An expired record no longer counts.
    await api.db
      .delete(idempotencyKeys)
      .where(and(eq(idempotencyKeys.organizationId, organizationId), eq(idempotencyKeys.key, key), lt(idempotencyKeys.expiresAt, now)))
    const [claimed] = await api.db
      .insert(idempotencyKeys)
      .values({ organizationId, key, scope, requestHash, expiresAt: new Date(now.getTime() + RETENTION_MS) })
      .onConflictDoNothing()
      .returning()
    // A claim whose request never finished (its process died, or recording the response failed) is taken
    // over by the same request once it is older than any request runs; the client asked to retry.
    const [takenOver] = claimed
      ? []
      : await api.db
          .update(idempotencyKeys)
          .set({ createdAt: now, expiresAt: new Date(now.getTime() + RETENTION_MS) })
          .where(
            and(
              eq(idempotencyKeys.organizationId, organizationId),
              eq(idempotencyKeys.key, key),
              eq(idempotencyKeys.status, 'in_progress'),
              eq(idempotencyKeys.requestHash, requestHash),
              lt(idempotencyKeys.createdAt, new Date(now.getTime() - IN_PROGRESS_LEASE_MS))
            )
          )
          .returning()
    if (claimed || takenOver) {
      request.idempotency = { key, organizationId }
      return false
    }
    const [first] = await api.db
      .select()
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.organizationId, organizationId), eq(idempotencyKeys.key, key)))
    if (!first) throw errors.conflict('the Idempotency-Key was released while this request arrived; retry')
    if (first.requestHash !== requestHash) {
      throw new AppError(422, 'idempotency_mismatch', 'this Idempotency-Key was used with a different request')
    }
    if (first.status === 'in_progress') throw errors.conflict('a request with this Idempotency-Key is still in progress')
    void reply.header('idempotent-replayed', 'true')
    void reply.code(first.responseStatus!).send(first.responseBody)
    return true
  }

  /** Stores the response under the claimed key, or releases the key after a failure or a refusal. */
  async function complete(request: FastifyRequest, reply: FastifyReply, payload: unknown, redact: string[]) {
    const claim = request.idempotency!
    const where = and(eq(idempotencyKeys.organizationId, claim.organizationId), eq(idempotencyKeys.key, claim.key))
    if (RELEASING.has(reply.statusCode) || reply.statusCode >= 500) {
      await api.db.delete(idempotencyKeys).where(where)
      return
    }
    const body = parseJson(payload)
    for (const field of redact) {
      if (body && typeof body === 'object' && field in body) (body as Record<string, unknown>)[field] = REDACTED
    }
    await api.db.update(idempotencyKeys).set({ status: 'completed', responseStatus: reply.statusCode, responseBody: body }).where(where)
  }
}

function parseJson(payload: unknown): unknown {
  if (typeof payload !== 'string' || payload.length === 0) return null
  try {
    return JSON.parse(payload)
  } catch {
    return null
  }
}
