import fastifyJwt from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Role } from '../db/schema/index.js'
import { errors } from '../errors.js'
import { roleAtLeast, type Principal } from '../lib/context.js'
import { throttled } from '../lib/throttle.js'
import { API_KEY_PREFIX, createApiKeyResolver } from '../modules/api-keys/credentials.js'

export interface AccessTokenClaims {
  sub: string
  org: string
  role: Role
  sid: string
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenClaims
    user: AccessTokenClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook of the authenticated subtree: sets request.principal or answers 401. */
    authenticate: (request: FastifyRequest) => Promise<void>
    /** Signs a short-lived access token (HS256, iss, aud, exp). */
    signAccessToken: (claims: AccessTokenClaims) => string
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
}

export default fp(
  async (app, opts: AuthOptions) => {
    await app.register(fastifyJwt, {
      secret: opts.secret,
      sign: { algorithm: 'HS256', iss: opts.issuer, aud: opts.audience, expiresIn: opts.accessTtlSeconds },
      // Pinned: a token declaring any other algorithm (including "none") is refused.
      verify: { algorithms: ['HS256'], allowedIss: opts.issuer, allowedAud: opts.audience }
    })

    const resolveApiKey = createApiKeyResolver({
      db: app.db,
      redis: app.redis,
      onCacheError: throttled((err) => app.log.warn({ err }, 'api key cache unavailable, using Postgres'))
    })

    app.decorateRequest('principal', null as unknown as Principal)
    app.decorate('signAccessToken', (claims: AccessTokenClaims) => app.jwt.sign(claims))
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const header = request.headers.authorization
      const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined
      if (!token) throw errors.unauthorized('a Bearer token (access token or API key) is required')

      if (token.startsWith(API_KEY_PREFIX)) {
        const key = await resolveApiKey(token)
        if (!key) throw errors.unauthorized('API key is invalid or revoked')
        request.principal = { kind: 'api_key', id: key.id, organizationId: key.organizationId, role: key.role }
        return
      }
      let claims: AccessTokenClaims
      try {
        claims = await request.jwtVerify<AccessTokenClaims>()
      } catch {
        throw errors.unauthorized('access token is invalid or expired')
      }
      request.principal = { kind: 'user', id: claims.sub, organizationId: claims.org, role: claims.role }
    })
  },
  { name: 'auth', dependencies: ['db', 'redis'] }
)

/** onRoute hook of the authenticated subtree: a route that forgets to declare its role fails at start-up. */
export function requireDeclaredRole(routeOptions: { url?: string; config?: { minRole?: Role } }) {
  if (!routeOptions.config?.minRole) throw new Error(`route ${routeOptions.url} in the authenticated API declares no minRole`)
}

/** preValidation hook of the authenticated subtree: runs after authentication and the rate limit. */
export async function authorize(request: FastifyRequest) {
  const minRole = request.routeOptions.config.minRole!
  if (!roleAtLeast(request.principal.role, minRole)) {
    throw errors.forbidden(`this operation requires the ${minRole} role or above`)
  }
}
