import fastifyCookie from '@fastify/cookie'
import fastifyCsrf from '@fastify/csrf-protection'
import fastifyJwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { LRUCache } from 'lru-cache'
import type { Role } from '../db/schema/index.js'
import { errors } from '../errors.js'
import { roleAtLeast, type Principal } from '../lib/context.js'
import { appendRouteHook } from '../lib/route-hooks.js'
import { throttled } from '../lib/throttle.js'
import { API_KEY_PREFIX, createApiKeyResolver, type ApiKeyIdentity } from '../modules/api-keys/credentials.js'
import { cookieOptions, CSRF_COOKIE, CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE } from '../modules/auth/cookies.js'
import { createSessionChecker } from '../modules/auth/sessions.js'
import { isSessionId, type AccessTokenClaims } from '../modules/auth/tokens.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenClaims
    user: AccessTokenClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Sets request.principal or throws 401. */
    authenticate: (request: FastifyRequest) => Promise<void>
    /** onRequest hook of the authenticated subtree: `authenticate` as a callback hook. */
    authenticateHook: (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void
    /** Signs a short-lived access token (HS256, iss, aud, exp). */
    signAccessToken: (claims: AccessTokenClaims) => string
    /** onRequest hook after authentication: a cookie-signed unsafe request must carry the CSRF token (403) */
    csrfHook: (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void
    /** The request's cookies, parsed on first use (agents send none: nothing is parsed on their hot path). */
    cookiesOf: (request: FastifyRequest) => FastifyRequest['cookies']
  }
  interface FastifyRequest {
    principal: Principal
  }
  interface FastifyContextConfig {
    /** Lowest role allowed on the route; every authenticated route declares one. */
    minRole?: Role
  }
}

export interface AuthOptions {
  secret: string
  issuer: string
  audience: string
  accessTtlSeconds: number
  /** failed authentications per client address per minute (per process) before the address gets 429 */
  failuresPerMinute: number
}

/**
 * Failed authentications per client address in the current minute. An address past the limit is refused
 * before its credential is looked at, so guessing API keys (each unknown one costs a Postgres query) or
 * tokens is bounded per address; the table's size is bounded too, dropping the least recent addresses.
 */
function failureLimiter(perMinute: number, now: () => number) {
  const failures = new LRUCache<string, { minute: number; count: number }>({ max: 100_000 })
  const minuteOf = () => Math.floor(now() / 60_000)
  return {
    check(address: string) {
      const seen = failures.get(address)
      if (seen && seen.minute === minuteOf() && seen.count >= perMinute) {
        throw errors.rateLimited(Math.max(1, Math.ceil(((seen.minute + 1) * 60_000 - now()) / 1000)))
      }
    },
    record(address: string) {
      const minute = minuteOf()
      const seen = failures.get(address)
      if (seen && seen.minute === minute) seen.count++
      else failures.set(address, { minute, count: 1 })
    }
  }
}

export default fp(
  async (app, opts: AuthOptions) => {
    await app.register(fastifyJwt, {
      secret: opts.secret,
      sign: { algorithm: 'HS256', iss: opts.issuer, aud: opts.audience, expiresIn: opts.accessTtlSeconds },
      // Pinned: a token declaring any other algorithm (including "none") is refused.
      verify: { algorithms: ['HS256'], allowedIss: opts.issuer, allowedAud: opts.audience }
    })
    // No parsing hook: cookies are parsed only when a request is about to be read by cookie (cookiesOf).
    await app.register(fastifyCookie, { hook: false })
    const cookiesOf = (request: FastifyRequest) => (request.cookies ??= app.parseCookie(request.headers.cookie ?? ''))
    app.decorate('cookiesOf', cookiesOf)
    await app.register(fastifyCsrf, {
      cookieKey: CSRF_COOKIE,
      cookieOpts: cookieOptions('/'),
      getToken: (request) => request.headers[CSRF_HEADER] as string | undefined,
      logLevel: 'info'
    })

    const resolveApiKey = createApiKeyResolver({
      db: app.db,
      redis: app.redis,
      invalidation: app.invalidation,
      onCacheError: throttled((err) => app.log.warn({ err }, 'api key cache unavailable, using Postgres'))
    })
    const isSessionLive = createSessionChecker({
      db: app.db,
      redis: app.redis,
      invalidation: app.invalidation,
      onCacheError: throttled((err) => app.log.warn({ err }, 'session tombstones unavailable, using Postgres'))
    })

    app.decorateRequest('principal', null as unknown as Principal)
    app.decorate('signAccessToken', (claims: AccessTokenClaims) => app.jwt.sign(claims))
    const failures = failureLimiter(opts.failuresPerMinute, () => app.clock.now().getTime())
    const refuse = (request: FastifyRequest, detail: string) => {
      failures.record(request.ip)
      return errors.unauthorized(detail)
    }
    const ofKey = (request: FastifyRequest, key: ApiKeyIdentity | undefined): Principal => {
      if (!key) throw refuse(request, 'API key is invalid or revoked')
      return { kind: 'api_key', id: key.id, organizationId: key.organizationId, role: key.role }
    }
    const ofSession = (request: FastifyRequest, claims: AccessTokenClaims, live: boolean, viaCookie: boolean): Principal => {
      if (!live) throw refuse(request, 'the session of this access token has ended (logged out or revoked)')
      const principal: Principal = { kind: 'user', id: claims.sub, organizationId: claims.org, role: claims.role }
      if (viaCookie) principal.viaCookie = true
      return principal
    }
    const ofAccessToken = (request: FastifyRequest, token: string, viaCookie: boolean): Principal | Promise<Principal> => {
      let claims: AccessTokenClaims
      try {
        claims = app.jwt.verify<AccessTokenClaims>(token)
      } catch {
        throw refuse(request, 'access token is invalid or expired')
      }
      // A token outlives its session's logout or revocation only until this check: its `sid` must be live.
      if (!isSessionId(claims.sid)) return ofSession(request, claims, false, viaCookie)
      const live = isSessionLive(claims.sid)
      return live instanceof Promise
        ? live.then((found) => ofSession(request, claims, found, viaCookie))
        : ofSession(request, claims, live, viaCookie)
    }
    /**
     * The caller, synchronously when its API key is in this process's cache: a Bearer header (API key or
     * access token), else the console's session cookie.
     */
    const identify = (request: FastifyRequest): Principal | Promise<Principal> => {
      failures.check(request.ip)
      const header = request.headers.authorization
      if (header === undefined) {
        const cookie = cookiesOf(request)[SESSION_COOKIE]
        if (cookie) return ofAccessToken(request, cookie, true)
      }
      const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined
      if (!token) throw refuse(request, 'a Bearer token (access token or API key) is required')
      if (token.startsWith(API_KEY_PREFIX)) {
        const key = resolveApiKey(token)
        return key instanceof Promise ? key.then((found) => ofKey(request, found)) : ofKey(request, key)
      }
      return ofAccessToken(request, token, false)
    }

    app.decorate('authenticate', async (request: FastifyRequest) => {
      request.principal = await identify(request)
    })
    // The same as a callback hook: on the hot path (a cached API key) it costs no promise.
    app.decorate('authenticateHook', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
      let principal: Principal | Promise<Principal>
      try {
        principal = identify(request)
      } catch (err) {
        return done(err as Error)
      }
      if (!(principal instanceof Promise)) {
        request.principal = principal
        return done()
      }
      principal.then((found) => {
        request.principal = found
        done()
      }, done)
    })
    app.decorate('csrfHook', (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
      if (!request.principal.viaCookie || SAFE_METHODS.has(request.method)) return done()
      cookiesOf(request)
      app.csrfProtection(request, reply, done)
    })
  },
  { name: 'auth', dependencies: ['db', 'redis'] }
)

/**
 * onRoute hook of the authenticated subtree: every route declares its lowest role (one that forgets fails
 * at start-up) and gets a preValidation check of it, which runs after authentication and the rate limit.
 */
export function requireRole(route: { url?: string; config?: { minRole?: Role } }) {
  const minRole = route.config?.minRole
  if (!minRole) throw new Error(`route ${route.url} in the authenticated API declares no minRole`)
  const forbidden = `this operation requires the ${minRole} role or above`
  appendRouteHook(route, 'preValidation', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    if (roleAtLeast(request.principal.role, minRole)) done()
    else done(errors.forbidden(forbidden))
  })
}
