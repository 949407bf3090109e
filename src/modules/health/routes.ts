import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { withTimeout } from '../../lib/timeout.js'
import { probeRedis, RedisNotReadyError, type ClusterReport } from './redis-probe.js'

const Check = Type.Union([Type.Literal('ok'), Type.Literal('down')])
const Cluster = Type.Object(
  {
    state: Type.String({ description: '`cluster_state` the masters report (`ok` when every one that answered says ok)' }),
    masters: Type.Integer({ description: 'masters in the slot map' }),
    mastersUp: Type.Integer({ description: 'masters that answered PING' }),
    scriptsLoaded: Type.Optional(
      Type.Integer({ description: 'masters holding the scoring script (informational: a master without it loads it on first use)' })
    )
  },
  { description: 'a Redis Cluster role: ready when every master answers and reports cluster_state:ok' }
)
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('down')]),
  checks: Type.Object({ postgres: Check, redis: Check, queue: Check }),
  /** only for a role on a Redis Cluster */
  cluster: Type.Optional(Type.Object({ redis: Type.Optional(Cluster), queue: Type.Optional(Cluster) })),
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
        description:
          '`degraded` (503): a Redis is down (for a role on a Redis Cluster: a master does not answer, or cluster_state is not ok; `cluster` says more), Postgres-backed reads still work. `down` (503): Postgres is down.',
        response: { 200: Readiness, 503: Readiness }
      }
    },
    async (_request, reply) => {
      const cluster: { redis?: ClusterReport; queue?: ClusterReport } = {}
      // A Redis probe bounds each of its commands (run in parallel) by CHECK_TIMEOUT_MS; the outer bound is a backstop.
      const redisProbe = (name: 'redis' | 'queue', client: typeof app.redis, scripts: boolean) => async () => {
        try {
          const report = await probeRedis(client, CHECK_TIMEOUT_MS, { scripts })
          if (report) cluster[name] = report
        } catch (err) {
          if (err instanceof RedisNotReadyError && err.cluster) cluster[name] = err.cluster
          throw err
        }
      }
      const probes: Record<'postgres' | 'redis' | 'queue', () => Promise<unknown>> = {
        postgres: () => app.pg.query('SELECT 1'),
        // The scoring scripts run on the state role only.
        redis: redisProbe('redis', app.redis, true),
        queue: redisProbe('queue', app.queueRedis, false)
      }
      const results = await Promise.allSettled(
        Object.entries(probes).map(([name, probe]) => withTimeout(probe(), CHECK_TIMEOUT_MS + 500, name))
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
      return reply
        .code(status === 'ok' ? 200 : 503)
        .send({ status, checks, ...(Object.keys(cluster).length > 0 ? { cluster } : {}), ...(status === 'ok' ? {} : { errors }) })
    }
  )
}
