import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors, problemResponses } from '../../errors.js'
import { IdParams } from '../../lib/schemas.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { BacktestBody, BacktestReply } from './schemas.js'

export const backtestRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { backtest, plans } = app.services

  app.post(
    '/services/:id/backtest',
    {
      bodyLimit: 9 * 1024 * 1024,
      config: {
        minRole: 'operator',
        // Its own budget per organization (more API keys buy no more), sized by the plan: one backtest
        // replays up to 100,000 rows.
        rateLimit: {
          timeWindow: 60_000,
          max: async (request) => PLAN_LIMITS[await plans.planOf(request.principal.organizationId)].backtestsPerMinute,
          keyGenerator: (request) => `backtest:${request.principal.organizationId}`,
          errorResponseBuilder: (_request, context) => errors.rateLimited(Math.max(1, Math.ceil(context.ttl / 1000)))
        }
      },
      schema: {
        tags: ['services'],
        operationId: 'backtestService',
        summary: 'Replay history through detection and the incident lifecycle, touching nothing live',
        description:
          'Scores the history with the same script as live ingestion (on scratch keys, deleted afterwards) using the service\'s detection settings, or `detection` to try, and runs the incident lifecycle on a simulated clock: the anomaly episodes found and the incidents that would have opened, escalated, re-opened and resolved. Up to 100,000 rows and 100 metrics; at most 20 s (503 `backtest_timeout` beyond); `backtestsPerMinute` per organization by plan (429).',
        params: IdParams,
        body: BacktestBody,
        response: { 200: BacktestReply, ...problemResponses(400, 401, 403, 404, 413, 429, 503) }
      }
    },
    async (request) => backtest.backtest(request.principal.organizationId, request.params.id, request.body)
  )
}
