import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { DLQ_STREAM, LEGACY_DLQ_STREAMS } from '../redis/queues.js'
import { probeRedis, RedisNotReadyError, type ClusterReport } from '../modules/health/redis-probe.js'
import { withTimeout } from '../lib/timeout.js'
import type { Config } from '../config.js'
import { errors } from '../errors.js'
import { sameSecret } from '../lib/crypto.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: {
      registry: Registry
      /** counts an ingestion result (samples accepted and rejected, anomalies by severity) */
      countIngestion: (result: { accepted: number; rejected: { code: string }[]; anomalies: { severity: string; suppressed: boolean }[] }) => void
    }
  }
}

const PROBE_TIMEOUT_MS = 1000

/**
 * Prometheus metrics on a registry of the app's own (several apps may share a process in tests): HTTP
 * latency by route, ingestion counters, and gauges read at scrape time from Postgres and Redis — open
 * incidents, actions by status, queue depths, dead-letter depth, store availability.
 */
export default fp(
  async (app: FastifyInstance, opts: { access: Config['metricsAccess'] }) => {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    const http = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry]
    })
    const samplesIngested = new Counter({ name: 'autopilot_samples_ingested_total', help: 'Metric samples', labelNames: ['outcome'], registers: [registry] })
    const anomalies = new Counter({ name: 'autopilot_anomalies_total', help: 'Anomalies detected', labelNames: ['severity', 'suppressed'], registers: [registry] })
    const up = new Gauge({ name: 'autopilot_dependency_up', help: '1 when the dependency answered the scrape probe', labelNames: ['dependency'], registers: [registry] })
    const openIncidents = new Gauge({ name: 'autopilot_incidents_open', help: 'Incidents not resolved', registers: [registry] })
    const actionsByStatus = new Gauge({ name: 'autopilot_actions', help: 'Actions by status', labelNames: ['status'], registers: [registry] })
    const queueDepth = new Gauge({ name: 'autopilot_queue_jobs', help: 'BullMQ jobs by queue and state', labelNames: ['queue', 'state'], registers: [registry] })
    new Gauge({
      name: 'autopilot_cache_invalidations_live',
      help: '1 while this process provably receives cache invalidations (and so serves API keys from memory)',
      registers: [registry],
      collect() {
        this.set(app.invalidation.isFresh() ? 1 : 0)
      }
    })
    new Gauge({
      name: 'autopilot_active_series',
      help: 'Series with a sample in the last hour, per organization (as this process last counted them); the plan limits them',
      labelNames: ['organization_id'],
      registers: [registry],
      collect() {
        this.reset()
        for (const [organizationId, count] of app.services.seriesAdmission.activeCounts()) this.set({ organization_id: organizationId }, count)
      }
    })
    const seriesRefused = new Counter({
      name: 'autopilot_series_limit_refused_samples_total',
      help: 'Samples of new series refused because the organization was at its plan\'s active series',
      registers: [registry]
    })
    const dlqDepth = new Gauge({
      name: 'autopilot_audit_dlq_entries',
      help: 'Deferred writes waiting in {audit}:dlq (and in audit:dlq, its name before, until the worker moves them)',
      registers: [registry]
    })
    const clusterMasters = new Gauge({
      name: 'autopilot_redis_cluster_masters',
      help: 'Masters of a Redis role on a Redis Cluster: known (in the slot map), up (answering PING), scripts_loaded (holding the scoring script; state role)',
      labelNames: ['role', 'state'],
      registers: [registry]
    })

    app.decorate('metrics', {
      registry,
      countIngestion: (result) => {
        samplesIngested.inc({ outcome: 'accepted' }, result.accepted)
        if (result.rejected.length > 0) {
          samplesIngested.inc({ outcome: 'rejected' }, result.rejected.length)
          const refused = result.rejected.filter((r) => r.code === 'series_limit').length
          if (refused > 0) seriesRefused.inc(refused)
        }
        for (const a of result.anomalies) anomalies.inc({ severity: a.severity, suppressed: String(a.suppressed) })
      }
    })

    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched'
      http.observe({ method: request.method, route, status_code: reply.statusCode }, reply.elapsedTime / 1000)
      done()
    })

    const probe = async (dependency: string, read: () => Promise<void>) => {
      try {
        await withTimeout(read(), PROBE_TIMEOUT_MS, dependency)
        up.set({ dependency }, 1)
      } catch {
        up.set({ dependency }, 0)
      }
    }

    /** The readiness probe of /health/ready (for a Redis Cluster: every master up, cluster_state ok), with its report as gauges. */
    async function redisReady(role: 'state' | 'queue', client: typeof app.redis, scripts: boolean) {
      const record = (report: ClusterReport | undefined) => {
        if (!report) return
        clusterMasters.set({ role, state: 'known' }, report.masters)
        clusterMasters.set({ role, state: 'up' }, report.mastersUp)
        if (report.scriptsLoaded !== undefined) clusterMasters.set({ role, state: 'scripts_loaded' }, report.scriptsLoaded)
      }
      try {
        record(await probeRedis(client, PROBE_TIMEOUT_MS, { scripts }))
      } catch (err) {
        if (err instanceof RedisNotReadyError) record(err.cluster)
        throw err
      }
    }

    async function refresh() {
      await Promise.all([
        probe('postgres', async () => {
          const incidents = await app.pg.query<{ n: string }>("SELECT count(*) AS n FROM incidents WHERE status <> 'resolved'")
          openIncidents.set(Number(incidents.rows[0]!.n))
          const byStatus = await app.pg.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM actions GROUP BY status')
          actionsByStatus.reset()
          for (const row of byStatus.rows) actionsByStatus.set({ status: row.status }, Number(row.n))
        }),
        probe('redis', () => redisReady('state', app.redis, true)),
        probe('queue_redis', async () => {
          const depths = async () => {
            // Two keys of different slots: two commands, not one pipeline.
            const [current, legacy] = await Promise.all([app.queueRedis.xlen(DLQ_STREAM), app.queueRedis.xlen(LEGACY_DLQ_STREAMS[DLQ_STREAM])])
            dlqDepth.set(current + legacy)
            for (const queue of Object.values(app.queues)) {
              const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed')
              for (const [state, n] of Object.entries(counts)) queueDepth.set({ queue: queue.name, state }, n)
            }
          }
          await Promise.all([redisReady('queue', app.queueRedis, false), depths()])
        })
      ])
    }

    app.get(
      '/metrics',
      {
        schema: {
          tags: ['health'],
          operationId: 'metrics',
          summary: 'Prometheus metrics of every tenant: with METRICS_TOKEN set, only for its bearer; unset, open in development and test, off (404) in production',
          security: [],
          response: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } } }
        }
      },
      async (request, reply) => {
        const { access } = opts
        if (access === 'off') throw errors.notFound('route GET /metrics (set METRICS_TOKEN to serve it)')
        if (access !== 'open') {
          const header = request.headers.authorization
          if (!header?.startsWith('Bearer ') || !sameSecret(header.slice(7).trim(), access.token)) {
            throw errors.unauthorized('GET /metrics requires the METRICS_TOKEN as a Bearer token')
          }
        }
        await refresh()
        return reply.type(registry.contentType).send(await registry.metrics())
      }
    )
  },
  { name: 'metrics', dependencies: ['db', 'redis', 'queues'] }
)
