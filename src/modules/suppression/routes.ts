import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type, { type Static } from 'typebox'
import { errors, problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { Page, pageRequest, toPage } from '../../lib/pagination.js'
import { IdParams, toDate } from '../../lib/schemas.js'
import { ServiceAnomalySchema } from '../detection/schemas.js'
import type { RuleWindow } from './matcher.js'
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

const PreviewReply = Type.Object({
  matches: Type.Integer({ description: 'anomalies of the last hour the rule would have suppressed' }),
  examined: Type.Integer({ description: 'anomalies of the last hour on the services the rule names' }),
  examples: Type.Array(ServiceAnomalySchema)
})

export const suppressionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { suppression } = app.services
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
        response: { 201: SuppressionRuleSchema, ...problemResponses(400, 401, 402, 403, 429) }
      }
    },
    async (request, reply) => {
      const window = ruleWindow(request.body)
      const plan = await app.services.plans.planOf(request.principal.organizationId)
      const row = await suppression.create(changeContext(request), plan, window, request.body.reason)
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
    async (request) => suppression.preview(request.principal.organizationId, ruleWindow(request.body))
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
      const { active } = request.query
      const { now, rows } = await suppression.list(request.principal.organizationId, { active }, pageRequest(request.query))
      return toPage(rows, request.query.limit, (row) => presentRule(row, now))
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
      await suppression.end(changeContext(request), request.params.id)
      return reply.code(204).send(null)
    }
  )
}
