import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errors, problemResponses } from '../../errors.js'
import { changeContext, roleAtLeast } from '../../lib/context.js'
import { decodeCursor, Page, PageQuery, toPage } from '../../lib/pagination.js'
import { IdParams, iso, NullableTimestamp, RoleSchema, Timestamp, Uuid } from '../../lib/schemas.js'
import { keys, TTL } from '../../redis/keys.js'
import { recordAudit } from '../audit/repository.js'
import { API_KEY_CACHE, generateApiKey, REVOKED } from './credentials.js'
import { findKey, insertKey, listKeys, revokeKey, type ApiKeyRow } from './repository.js'

const ApiKeySchema = Type.Object({
  id: Uuid,
  name: Type.String(),
  role: RoleSchema,
  prefix: Type.String({ description: 'first characters of the key, to tell keys apart' }),
  createdAt: Timestamp,
  revokedAt: NullableTimestamp
})
const CreatedApiKey = Type.Object({
  id: Uuid,
  name: Type.String(),
  role: RoleSchema,
  key: Type.String({ description: 'the secret; shown only in this response' }),
  prefix: Type.String(),
  createdAt: Timestamp
})
const CreateApiKeyBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }), role: RoleSchema },
  { additionalProperties: false }
)

const presentKey = (row: ApiKeyRow) => ({
  id: row.id,
  name: row.name,
  role: row.role,
  prefix: row.keyPrefix,
  createdAt: row.createdAt.toISOString(),
  revokedAt: iso(row.revokedAt)
})

export const apiKeyRoutes: FastifyPluginAsyncTypebox = async (app) => {
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
      const secret = generateApiKey()
      const row = await app.db.transaction(async (tx) => {
        const created = await insertKey(tx, {
          organizationId: principal.organizationId,
          name: request.body.name,
          role: request.body.role,
          keyHash: secret.hash,
          keyPrefix: secret.prefix,
          createdBy: principal.kind === 'user' ? principal.id : null
        })
        await recordAudit(
          tx,
          changeContext(request),
          { action: 'api_key.created', resourceType: 'api_key', resourceId: created.id, after: presentKey(created) }
        )
        return created
      })
      const { revokedAt: _revokedAt, ...shown } = presentKey(row)
      return reply.code(201).send({ ...shown, key: secret.key })
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
      const { limit, cursor } = request.query
      const rows = await listKeys(app.db, request.principal.organizationId, limit + 1, decodeCursor(cursor))
      return toPage(rows, limit, presentKey)
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
      const { principal } = request
      const existing = await findKey(app.db, principal.organizationId, request.params.id)
      if (!existing) throw errors.notFound('API key')
      await app.db.transaction(async (tx) => {
        const revoked = await revokeKey(tx, existing.id)
        if (!revoked) return
        await recordAudit(
          tx,
          changeContext(request),
          {
            action: 'api_key.revoked',
            resourceType: 'api_key',
            resourceId: existing.id,
            before: presentKey(existing),
            after: presentKey(revoked)
          }
        )
      })
      // After the commit: overwrite any cached identity, in Redis and in every process (which waits until
      // no process can still serve it). If Redis refuses, the 503 tells the caller to repeat the
      // (idempotent) revocation; lookups fall back to Postgres while Redis is down anyway.
      await app.redis.set(keys.apiKeyAuth(existing.keyHash), REVOKED, 'EX', TTL.apiKeyAuthSeconds)
      await app.invalidation.invalidateEverywhere(API_KEY_CACHE, existing.keyHash)
      return reply.code(204).send(null)
    }
  )
}
