import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
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

export const suppressionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['suppression']

  app.post(
    '/suppression-rules',
    {
      config: { minRole: 'operator' },
      schema: {
        tags,
        operationId: 'createSuppressionRule',
        summary: 'Suppress matching anomalies during a window (absolute, optionally recurring weekly)',
        body: SuppressionRuleBody,
        response: { 201: SuppressionRuleSchema, ...problemResponses(400, 401, 403, 429) }
      }
    },
    async (request, reply) => {
      const body = request.body
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
      const ctx = changeContext(request)
      const row = await app.db.transaction(async (tx) => {
        const created = await insertRule(tx, {
          organizationId: ctx.organizationId,
          servicePattern: body.service ?? '*',
          metricPattern: body.metric ?? '*',
          maxSeverity: body.maxSeverity ?? null,
          startsAt,
          endsAt,
          schedule: body.schedule ?? null,
          reason: body.reason,
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
      return reply.code(201).send(presentRule(row))
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
      return reply.code(204).send(null)
    }
  )
}
