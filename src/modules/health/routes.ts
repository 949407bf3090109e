import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { withTimeout } from '../../lib/timeout.js'

const Check = Type.Union([Type.Literal('ok'), Type.Literal('down')])
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('down')]),
  checks: Type.Object({ postgres: Check, redis: Check, queue: Check }),
  errors: Type.Optional(Type.Record(Type.String(), Type.String()))
})

const CHECK_TIMEOUT_MS = 1000

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['health']

  app.get(
    '/health/live',
    {
      schema: {
        tags,
        operationId: 'live',
        security: [],
        summary: 'Liveness: 200 while the process runs',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) }
      }
    },
    async () => ({ status: 'ok' as const })
  )

  app.get(
    '/health/ready',
    {
      schema: {
        tags,
        operationId: 'ready',
        security: [],
        summary: 'Readiness: real checks of Postgres, state Redis and queue Redis',
        description: '`degraded` (503): a Redis is down, Postgres-backed reads still work. `down` (503): Postgres is down.',
        response: { 200: Readiness, 503: Readiness }
      }
    },
    async (_request, reply) => {
      const probes: Record<'postgres' | 'redis' | 'queue', () => Promise<unknown>> = {
        postgres: () => app.pg.query('SELECT 1'),
        redis: () => app.redis.ping(),
        queue: () => app.queueRedis.ping()
      }
      const results = await Promise.allSettled(
        Object.entries(probes).map(([name, probe]) => withTimeout(probe(), CHECK_TIMEOUT_MS, name))
      )
      const names = Object.keys(probes) as (keyof typeof probes)[]
      const checks = { postgres: 'ok', redis: 'ok', queue: 'ok' } as Record<keyof typeof probes, 'ok' | 'down'>
      const errors: Record<string, string> = {}
      results.forEach((result, i) => {
        if (result.status === 'rejected') {
          checks[names[i]!] = 'down'
          errors[names[i]!] = result.reason instanceof Error ? result.reason.message : String(result.reason)
        }
      })
      const status = checks.postgres === 'down' ? 'down' : checks.redis === 'down' || checks.queue === 'down' ? 'degraded' : 'ok'
      return reply.code(status === 'ok' ? 200 : 503).send({ status, checks, ...(status === 'ok' ? {} : { errors }) })
    }
  )
}
