import type { RedisClient } from '../../redis/client.js'
import { keys, TTL } from '../../redis/keys.js'
import type { ActionRow } from './repository.js'

/**
 * The `action:{<org>}:<id>` workflow mirror and the organization's pending list in the state Redis. They are
 * caches for dashboards and quick looks: Postgres decides everything, so a failure here is only reported.
 * Both keys carry the organization's hash tag, so this one pipeline stays on one Redis Cluster slot.
 */
export async function mirrorAction(redis: RedisClient, action: ActionRow, onError: (err: unknown) => void) {
  const mirror = keys.action(action.organizationId, action.id)
  const pipeline = redis.pipeline()
  pipeline
    .hset(mirror, {
      status: action.status,
      incidentId: action.incidentId,
      serviceId: action.serviceId,
      attempts: action.attempts,
      updatedAt: action.updatedAt.toISOString()
    })
    .expire(mirror, TTL.actionMirrorSeconds)
  const pending = keys.pendingActions(action.organizationId)
  if (action.status === 'pending_approval') pipeline.zadd(pending, action.expiresAt.getTime(), action.id)
  else pipeline.zrem(pending, action.id)
  pipeline.expire(pending, TTL.actionMirrorSeconds)
  await pipeline.exec().catch(onError)
}
