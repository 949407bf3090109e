import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type, { type Static } from 'typebox'
import { TTL } from '../../redis/keys.js'
import { recentAnomalies } from '../detection/window.js'
import { listServiceNames } from '../services/repository.js'
import { WindowAnomalyFields } from '../services/schemas.js'
import { globMatches, suppresses, type RuleWindow } from './matcher.js'
import { errors, problemResponses } from '../../errors.js'
import { actorRef, changeContext } from '../../lib/context.js'
import { decodeCursor, Page, toPage } from '../../lib/pagination.js'
import { IdParams, toDate } from '../../lib/schemas.js'
import { recordAudit } from '../audit/repository.js'
import { endRule, findRule, insertRule, listRules } from './repository.js'
import { ListRulesQuery, presentRule, SuppressionRuleBody, SuppressionRuleSchema } from './schemas.js'

function isTimeZone(name: string) {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name })
    return true
  } catch {
    return false
  }
}

type RuleBody = Static<typeof SuppressionRuleBody>

/** Checks what the schema cannot, and returns the rule's window as the matcher sees it. */
function ruleWindow(body: RuleBody): RuleWindow {
  const startsAt = toDate(body.startsAt)
  const endsAt = toDate(body.endsAt)
  if (!(endsAt > startsAt)) {
    throw errors.validation('the window is empty', [{ path: '/body/endsAt', message: 'must be after startsAt' }])
  }
  if (body.schedule && !isTimeZone(body.schedule.timezone)) {
    throw errors.validation('unknown time zone', [{ path: '/body/schedule/timezone', message: 'is not an IANA time zone' }])
  }
  if (body.schedule && body.schedule.start === body.schedule.end) {
    throw errors.validation('the daily window is empty', [{ path: '/body/schedule/end', message: 'must differ from start' }])
  }
  return {
    servicePattern: body.service ?? '*',
    metricPattern: body.metric ?? '*',
    maxSeverity: body.maxSeverity ?? null,
    startsAt,
    endsAt,
    schedule: body.schedule ?? null
  }
}

const PREVIEW_EXAMPLES = 20
const PREVIEW_MAX_SERVICES = 500
const PreviewReply = Type.Object({
  matches: Type.Integer({ description: 'anomalies of the last hour the rule would have suppressed' }),
  examined: Type.Integer({ description: 'anomalies of the last hour on the services the rule names' }),
  examples: Type.Array(Type.Object({ service: Type.String(), ...WindowAnomalyFields }))
})

export const suppressionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['suppression']

  app.post(
    '/suppression-rules',
    {
      config: { minRole: 'operator', idempotent: {} },
      schema: {
        tags,
        operationId: 'createSuppressionRule',
        summary: 'Suppress matching anomalies during a window (absolute, optionally recurring weekly)',
        body: SuppressionRuleBody,
        response: { 201: SuppressionRuleSchema, ...problemResponses(400, 401, 403, 429) }
      }
    },
    async (request, reply) => {
      const window = ruleWindow(request.body)
      const ctx = changeContext(request)
      const row = await app.db.transaction(async (tx) => {
        const created = await insertRule(tx, {
          organizationId: ctx.organizationId,
          ...window,
          reason: request.body.reason,
          createdBy: actorRef(ctx.actor)
        })
        await recordAudit(tx, ctx, {
          action: 'suppression_rule.created',
          resourceType: 'suppression_rule',
          resourceId: created.id,
          after: presentRule(created)
        })
        return created
      })
      await app.ruleCache.changed(ctx.organizationId)
      return reply.code(201).send(presentRule(row))
    }
  )

  app.post(
    '/suppression-rules/preview',
    {
      config: { minRole: 'operator' },
      schema: {
        tags,
        operationId: 'previewSuppressionRule',
        summary: "What a rule would have suppressed among the last hour's anomalies (nothing is saved)",
        body: SuppressionRuleBody,
        response: { 200: PreviewReply, ...problemResponses(400, 401, 403, 429, 503) }
      }
    },
    async (request) => {
      const rule = ruleWindow(request.body)
      const candidates = (await listServiceNames(app.db, request.principal.organizationId, PREVIEW_MAX_SERVICES)).filter((s) =>
        globMatches(rule.servicePattern, s.name)
      )
      const since = Date.now() - TTL.anomalyWindowMs
      let matches = 0
      let examined = 0
      const examples = []
      for (const service of candidates) {
        for (const anomaly of await recentAnomalies(app.redis, service.id, since)) {
          examined++
          if (!suppresses(rule, { service: service.name, metric: anomaly.metric, severity: anomaly.severity, at: Date.parse(anomaly.at) })) continue
          matches++
          if (examples.length < PREVIEW_EXAMPLES) examples.push({ service: service.name, ...anomaly })
        }
      }
      return { matches, examined, examples }
    }
  )

  app.get(
    '/suppression-rules',
    {
      config: { minRole: 'agent' },
      schema: {
        tags,
        operationId: 'listSuppressionRules',
        summary: 'List suppression rules (active=true: in effect now)',
        querystring: ListRulesQuery,
        response: { 200: Page(SuppressionRuleSchema), ...problemResponses(400, 401, 429) }
      }
    },
    async (request) => {
      const { limit, cursor, active } = request.query
      const now = new Date()
      const rows = await listRules(app.db, request.principal.organizationId, {
        active,
        now,
        after: decodeCursor(cursor),
        limit: limit + 1
      })
      return toPage(rows, limit, (row) => presentRule(row, now))
    }
  )

  app.delete(
    '/suppression-rules/:id',
    {
      config: { minRole: 'operator' },
      schema: {
        tags,
        operationId: 'endSuppressionRule',
        summary: 'End a suppression rule now (it is kept for the audit trail)',
        params: IdParams,
        response: { 204: Type.Null({ description: 'ended' }), ...problemResponses(400, 401, 403, 404, 429) }
      }
    },
    async (request, reply) => {
      const ctx = changeContext(request)
      await app.db.transaction(async (tx) => {
        const before = await findRule(tx, ctx.organizationId, request.params.id)
        if (!before) throw errors.notFound('suppression rule')
        if (before.endedAt) return
        const after = await endRule(tx, before, actorRef(ctx.actor))
        await recordAudit(tx, ctx, {
          action: 'suppression_rule.ended',
          resourceType: 'suppression_rule',
          resourceId: before.id,
          before: presentRule(before),
          after: presentRule(after)
        })
      })
      await app.ruleCache.changed(ctx.organizationId)
      return reply.code(204).send(null)
    }
  )
}
