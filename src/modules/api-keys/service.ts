import type { RedisClient } from '../../redis/client.js'
import type { Database } from '../../db/client.js'
import type { PageRequest } from '../../db/keyset.js'
import type { Role } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import type { ChangeContext } from '../../lib/context.js'
import type { InvalidationBus } from '../../lib/invalidation.js'
import { keys, TTL } from '../../redis/keys.js'
import { recordAudit } from '../audit/repository.js'
import { API_KEY_CACHE, generateApiKey, REVOKED } from './credentials.js'
import { findKey, insertKey, listKeys, revokeKey } from './repository.js'
import { presentKey } from './schemas.js'

export function createApiKeysService(deps: {
  db: Database
  redis: Pick<RedisClient, 'set'>
  invalidation: Pick<InvalidationBus, 'invalidateEverywhere'>
  clock: Clock
}) {
  /** Creates a key; its secret is returned once and only its hash is stored. */
  async function create(ctx: ChangeContext, input: { name: string; role: Role }) {
    const secret = generateApiKey()
    const row = await deps.db.transaction(async (tx) => {
      const created = await insertKey(tx, {
        organizationId: ctx.organizationId,
        name: input.name,
        role: input.role,
        keyHash: secret.hash,
        keyPrefix: secret.prefix,
        createdBy: ctx.actor.type === 'user' ? ctx.actor.id : null
      })
      await recordAudit(tx, ctx, { action: 'api_key.created', resourceType: 'api_key', resourceId: created.id, after: presentKey(created) })
      return created
    })
    return { row, key: secret.key }
  }

  /**
   * Revokes a key (again, harmlessly, if it already is). After the commit it overwrites any cached identity,
   * in Redis and in every process, and waits until no process can still serve it. If Redis refuses, the
   * error (503) tells the caller to repeat the revocation; lookups fall back to Postgres while Redis is down.
   */
  async function revoke(ctx: ChangeContext, id: string) {
    const existing = await findKey(deps.db, ctx.organizationId, id)
    if (!existing) throw errors.notFound('API key')
    await deps.db.transaction(async (tx) => {
      const revoked = await revokeKey(tx, existing.id, deps.clock.now())
      if (!revoked) return
      await recordAudit(tx, ctx, {
        action: 'api_key.revoked',
        resourceType: 'api_key',
        resourceId: existing.id,
        before: presentKey(existing),
        after: presentKey(revoked)
      })
    })
    await deps.redis.set(keys.apiKeyAuth(existing.keyHash), REVOKED, 'EX', TTL.apiKeyAuthSeconds)
    await deps.invalidation.invalidateEverywhere(API_KEY_CACHE, existing.keyHash)
  }

  const list = (organizationId: string, page: PageRequest) => listKeys(deps.db, organizationId, page)

  return { create, revoke, list }
}
