import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import Type from 'typebox'
import { AppError, errors, problemResponses } from '../../errors.js'
import { roleAtLeast, type Principal } from '../../lib/context.js'
import { cookieOptions, CSRF_HEADER, REFRESH_COOKIE, SESSION_COOKIE, SESSION_PATH } from './cookies.js'
import { LoginBody, MeReply } from './schemas.js'
import type { SessionGrant } from './tokens.js'

export interface SessionRouteOptions {
  accessTtlSeconds: number
  refreshTtlSeconds: number
  /** the organization whose admins may open the queue dashboard (QUEUE_DASHBOARD_ORGANIZATION_ID) */
  operatorOrganizationId: string | undefined
}

const SessionReply = Type.Object({
  csrfToken: Type.String({ description: `send it as the ${CSRF_HEADER} header with every request that changes something` }),
  me: Type.Union([MeReply, Type.Null()], { description: 'the signed-in user, as GET /v1/me describes it; null when signed out' }),
  queueDashboard: Type.Boolean({ description: 'the user may open the queue dashboard (/admin/queues)' }),
  renewable: Type.Boolean({ description: 'the browser holds a refresh cookie: when `me` is null, POST /v1/auth/session/refresh may renew the session' })
})

/** SESSION_PATH within the /v1 prefix */
const ROUTE = '/auth/session'

const csrfHeaders = Type.Object({ [CSRF_HEADER]: Type.String({ maxLength: 200, description: 'the csrfToken of GET /v1/auth/session' }) })

/**
 * The browser console's cookie session, on top of the same login sessions as /auth/login: refresh-token
 * rotation and reuse detection are the same code. The tokens live in httpOnly cookies; every request here
 * but the GET carries the CSRF token, like every unsafe API request signed in by cookie.
 */
export const sessionRoutes: FastifyPluginAsyncTypebox<SessionRouteOptions> = async (app, opts) => {
  const { auth } = app.services
  const tags = ['auth']
  // Every route here reads cookies (the CSRF secret, the session's).
  app.addHook('onRequest', (request, _reply, done) => {
    app.cookiesOf(request)
    done()
  })

  const startSession = (reply: FastifyReply, grant: SessionGrant): Principal => {
    void reply.setCookie(SESSION_COOKIE, app.signAccessToken(grant.claims), cookieOptions('/', opts.accessTtlSeconds))
    void reply.setCookie(REFRESH_COOKIE, grant.refreshToken, cookieOptions(SESSION_PATH, opts.refreshTtlSeconds))
    const { sub, org, role } = grant.claims
    return { kind: 'user', id: sub, organizationId: org, role }
  }
  const endSession = (reply: FastifyReply) => {
    void reply.clearCookie(SESSION_COOKIE, cookieOptions('/'))
    void reply.clearCookie(REFRESH_COOKIE, cookieOptions(SESSION_PATH))
  }
  const answer = async (reply: FastifyReply, principal: Principal | undefined, renewable: boolean) => ({
    csrfToken: reply.generateCsrf(),
    me: principal ? await auth.describe(principal) : null,
    queueDashboard:
      principal !== undefined && principal.organizationId === opts.operatorOrganizationId && roleAtLeast(principal.role, 'admin'),
    renewable
  })
  /** The signed-in user of the session cookie, if it names a live session. */
  const signedIn = async (request: FastifyRequest) => {
    if (!request.cookies[SESSION_COOKIE]) return undefined
    try {
      await app.authenticate(request)
      return request.principal.viaCookie ? request.principal : undefined
    } catch {
      return undefined
    }
  }

  app.get(
    ROUTE,
    {
      config: { rateLimit: false },
      schema: {
        tags,
        operationId: 'getSession',
        security: [],
        summary: 'The console session: who is signed in by cookie, and the CSRF token',
        response: { 200: SessionReply, ...problemResponses(429) }
      }
    },
    async (request, reply) => {
      void reply.header('cache-control', 'no-store')
      return answer(reply, await signedIn(request), request.cookies[REFRESH_COOKIE] !== undefined)
    }
  )

  app.post(
    ROUTE,
    {
      onRequest: app.csrfProtection,
      schema: {
        tags,
        operationId: 'createSession',
        security: [],
        summary: 'Sign in with email and password into httpOnly session cookies (the console)',
        headers: csrfHeaders,
        body: LoginBody,
        response: { 200: SessionReply, ...problemResponses(400, 401, 403, 429) }
      }
    },
    async (request, reply) => answer(reply, startSession(reply, await auth.login(request.body, request.id)), true)
  )

  app.post(
    `${ROUTE}/refresh`,
    {
      onRequest: app.csrfProtection,
      schema: {
        tags,
        operationId: 'refreshSession',
        security: [],
        summary: 'Rotate the session cookies (single-use refresh token; reuse ends the session)',
        headers: csrfHeaders,
        response: { 200: SessionReply, ...problemResponses(401, 403, 429) }
      }
    },
    async (request, reply) => {
      const refreshToken = request.cookies[REFRESH_COOKIE]
      if (!refreshToken) throw errors.unauthorized('no session to refresh: sign in')
      try {
        return await answer(reply, startSession(reply, await auth.refresh(refreshToken, request.id)), true)
      } catch (err) {
        // A refused token ends the browser's session too; an unavailable store does not.
        if (err instanceof AppError && err.statusCode === 401) endSession(reply)
        throw err
      }
    }
  )

  app.delete(
    ROUTE,
    {
      onRequest: app.csrfProtection,
      schema: {
        tags,
        operationId: 'deleteSession',
        security: [],
        summary: 'Sign out: end the session and clear its cookies',
        headers: csrfHeaders,
        response: { 204: Type.Null({ description: 'signed out' }), ...problemResponses(403, 429) }
      }
    },
    async (request, reply) => {
      const refreshToken = request.cookies[REFRESH_COOKIE]
      if (refreshToken) await auth.logout(refreshToken, request.id)
      endSession(reply)
      return reply.code(204).send(null)
    }
  )
}
