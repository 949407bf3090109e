import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errors, problemResponses } from '../../errors.js'
import { changeContext, roleAtLeast } from '../../lib/context.js'
import { Page, PageQuery, pageRequest, toPage } from '../../lib/pagination.js'
import { IdParams } from '../../lib/schemas.js'
import { ApiKeySchema, CreateApiKeyBody, CreatedApiKey, presentKey } from './schemas.js'

export const apiKeyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { apiKeys } = app.services
  const tags = ['api-keys']

  app.post(
    '/api-keys',
    {
      config: { minRole: 'admin', idempotent: { redact: ['key'] } },
      schema: {
        tags,
        operationId: 'createApiKey',
        summary: 'Create an API key for an agent (the key is shown once)',
        body: CreateApiKeyBody,
        response: { 201: CreatedApiKey, ...problemResponses(400, 401, 403, 429) }
      }
    },
    async (request, reply) => {
      const { principal } = request
      if (!roleAtLeast(principal.role, request.body.role)) {
        throw errors.forbidden(`you cannot create a key with a role above your own (${principal.role})`)
      }
      const { row, key } = await apiKeys.create(changeContext(request), request.body)
      const { revokedAt: _revokedAt, ...shown } = presentKey(row)
      return reply.code(201).send({ ...shown, key })
    }
  )

  app.get(
    '/api-keys',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'listApiKeys',
        summary: 'List API keys (without key material)',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(ApiKeySchema), ...problemResponses(400, 401, 403, 429) }
      }
    },
    async (request) => {
      const rows = await apiKeys.list(request.principal.organizationId, pageRequest(request.query))
      return toPage(rows, request.query.limit, presentKey)
    }
  )

  app.delete(
    '/api-keys/:id',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'revokeApiKey',
        summary: 'Revoke an API key; it answers 401 from the next request on, in every API process',
        description:
          'Answers once no API process can still accept the key from its in-process cache (about one second). A 503 means Redis refused the cache update: the key is revoked in Postgres; repeat the request.',
        params: IdParams,
        response: { 204: Type.Null({ description: 'revoked' }), ...problemResponses(400, 401, 403, 404, 429, 503) }
      }
    },
    async (request, reply) => {
      await apiKeys.revoke(changeContext(request), request.params.id)
      return reply.code(204).send(null)
    }
  )
}
