import type { RedisClient } from '../../redis/client.js'
import type { Database } from '../../db/client.js'
import type { PageRequest } from '../../db/keyset.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import { actorRef, type ChangeContext } from '../../lib/context.js'
import { TTL } from '../../redis/keys.js'
import { recordAudit } from '../audit/repository.js'
import { recentAnomalies } from '../detection/window.js'
import { listServiceNames } from '../services/repository.js'
import { globMatches, suppresses, type RuleWindow } from './matcher.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import type { Plan } from '../../db/schema/index.js'
import { countLiveRules, endRule, findRule, insertRule, listRules } from './repository.js'
import type { RuleCache } from './rule-cache.js'
import { presentRule } from './schemas.js'

const PREVIEW_EXAMPLES = 20
const PREVIEW_MAX_SERVICES = 500

export function createSuppressionService(deps: {
  db: Database
  /** the state Redis, where detection keeps each service's recent anomalies */
  redis: RedisClient
  ruleCache: Pick<RuleCache, 'changed'>
  clock: Clock
}) {
  /** A new rule, within the plan's rules not yet ended (each sample is matched against them all). */
  async function create(ctx: ChangeContext, plan: Plan, window: RuleWindow, reason: string) {
    const row = await deps.db.transaction(async (tx) => {
      const limit = PLAN_LIMITS[plan].suppressionRules
      if ((await countLiveRules(tx, ctx.organizationId, deps.clock.now(), { lock: true })) >= limit) {
        throw errors.planLimit(`the ${plan} plan allows ${limit} suppression rules that have not ended; end some first`)
      }
      const created = await insertRule(tx, { organizationId: ctx.organizationId, ...window, reason, createdBy: actorRef(ctx.actor) })
      await recordAudit(tx, ctx, {
        action: 'suppression_rule.created',
        resourceType: 'suppression_rule',
        resourceId: created.id,
        after: presentRule(created)
      })
      return created
    })
    await deps.ruleCache.changed(ctx.organizationId)
    return row
  }

  /** Ends a rule now (ending an ended rule changes nothing); it is kept for the audit trail. */
  async function end(ctx: ChangeContext, id: string) {
    await deps.db.transaction(async (tx) => {
      const before = await findRule(tx, ctx.organizationId, id)
      if (!before) throw errors.notFound('suppression rule')
      if (before.endedAt) return
      const after = await endRule(tx, before, actorRef(ctx.actor), deps.clock.now())
      await recordAudit(tx, ctx, {
        action: 'suppression_rule.ended',
        resourceType: 'suppression_rule',
        resourceId: before.id,
        before: presentRule(before),
        after: presentRule(after)
      })
    })
    await deps.ruleCache.changed(ctx.organizationId)
  }

  /** A page of rules, and the instant `active` was judged at (rules present themselves as of then). */
  async function list(organizationId: string, filter: { active?: boolean }, page: PageRequest) {
    const now = deps.clock.now()
    return { now, rows: await listRules(deps.db, organizationId, { active: filter.active, now }, page) }
  }

  /** What a rule would have suppressed among the last hour's anomalies of the services it names. */
  async function preview(organizationId: string, rule: RuleWindow) {
    const candidates = (await listServiceNames(deps.db, organizationId, PREVIEW_MAX_SERVICES)).filter((s) =>
      globMatches(rule.servicePattern, s.name)
    )
    const since = deps.clock.now().getTime() - TTL.anomalyWindowMs
    let matches = 0
    let examined = 0
    const examples = []
    for (const service of candidates) {
      for (const anomaly of await recentAnomalies(deps.redis, service.id, since)) {
        examined++
        if (!suppresses(rule, { service: service.name, metric: anomaly.metric, severity: anomaly.severity, at: Date.parse(anomaly.at) })) continue
        matches++
        if (examples.length < PREVIEW_EXAMPLES) examples.push({ service: service.name, ...anomaly })
      }
    }
    return { matches, examined, examples }
  }

  return { create, end, list, preview }
}
