import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { problemResponses } from '../../errors.js'
import { LoginBody, MeReply, RefreshBody, SignupBody, SignupReply, TokenPair } from './schemas.js'
import type { SessionGrant } from './tokens.js'

export interface AuthRouteOptions {
  accessTtlSeconds: number
}

/** Signup, login, refresh and logout: the only routes that take no credential. */
export const authRoutes: FastifyPluginAsyncTypebox<AuthRouteOptions> = async (app, opts) => {
  const { auth } = app.services
  const tags = ['auth']
  /** A granted session as the client receives it: the signed access token and the refresh token. */
  const tokenPair = ({ claims, refreshToken }: SessionGrant) => ({
    accessToken: app.signAccessToken(claims),
    refreshToken,
    expiresIn: opts.accessTtlSeconds
  })

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
    async (request, reply) => {
      const { user, organization, session } = await auth.signup(request.body, request.id)
      return reply.code(201).send({ user, organization, ...tokenPair(session) })
    }
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
    async (request) => tokenPair(await auth.login(request.body, request.id))
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
    async (request) => tokenPair(await auth.refresh(request.body.refreshToken, request.id))
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
    async (request) => app.services.auth.describe(request.principal)
  )
}
