import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { problemResponses } from '../../errors.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { findKey } from '../api-keys/repository.js'
import { presentUser } from '../users/repository.js'
import { findOrganization, findUser } from './repository.js'
import { LoginBody, MeReply, RefreshBody, SignupBody, SignupReply, TokenPair } from './schemas.js'
import { createAuthService } from './service.js'
import { errors } from '../../errors.js'

export interface AuthRouteOptions {
  accessTtlSeconds: number
  refreshTtlSeconds: number
}

/** Signup, login, refresh and logout: the only routes that take no credential. */
export const authRoutes: FastifyPluginAsyncTypebox<AuthRouteOptions> = async (app, opts) => {
  const auth = createAuthService({
    db: app.db,
    signAccessToken: app.signAccessToken,
    accessTtlSeconds: opts.accessTtlSeconds,
    refreshTtlSeconds: opts.refreshTtlSeconds
  })
  const tags = ['auth']

  app.post(
    '/auth/signup',
    {
      schema: {
        tags,
        operationId: 'signup',
        security: [],
        summary: 'Create an organization and its owner',
        body: SignupBody,
        response: { 201: SignupReply, ...problemResponses(400, 409, 429) }
      }
    },
    async (request, reply) => reply.code(201).send(await auth.signup(request.body, request.id))
  )

  app.post(
    '/auth/login',
    {
      schema: {
        tags,
        operationId: 'login',
        security: [],
        summary: 'Exchange email and password for a token pair',
        body: LoginBody,
        response: { 200: TokenPair, ...problemResponses(400, 401, 429) }
      }
    },
    async (request) => auth.login(request.body, request.id)
  )

  app.post(
    '/auth/refresh',
    {
      schema: {
        tags,
        operationId: 'refreshToken',
        security: [],
        summary: 'Rotate a refresh token (single use; reuse revokes the session)',
        body: RefreshBody,
        response: { 200: TokenPair, ...problemResponses(400, 401, 429) }
      }
    },
    async (request) => auth.refresh(request.body.refreshToken, request.id)
  )

  app.post(
    '/auth/logout',
    {
      schema: {
        tags,
        operationId: 'logout',
        security: [],
        summary: 'Revoke the session of a refresh token',
        body: RefreshBody,
        response: { 204: Type.Null({ description: 'logged out' }), ...problemResponses(400, 429) }
      }
    },
    async (request, reply) => {
      await auth.logout(request.body.refreshToken, request.id)
      return reply.code(204).send(null)
    }
  )
}

export const meRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/me',
    {
      config: { minRole: 'agent' },
      schema: {
        tags: ['auth'],
        operationId: 'getMe',
        summary: 'The caller: user or API key, organization, role, plan and limits',
        response: { 200: MeReply, ...problemResponses(401, 429) }
      }
    },
    async (request) => {
      const { principal } = request
      const organization = await findOrganization(app.db, principal.organizationId)
      if (!organization) throw errors.unauthorized('the organization of this credential no longer exists')
      let user = null
      let apiKey = null
      if (principal.kind === 'user') {
        const row = await findUser(app.db, principal.organizationId, principal.id)
        if (!row) throw errors.unauthorized('the user of this token no longer exists')
        user = presentUser(row)
      } else {
        const row = await findKey(app.db, principal.organizationId, principal.id)
        if (!row) throw errors.unauthorized('API key is invalid or revoked')
        apiKey = { id: row.id, name: row.name, role: row.role }
      }
      return { user, apiKey, organization, role: principal.role, plan: organization.plan, limits: PLAN_LIMITS[organization.plan] }
    }
  )
}
