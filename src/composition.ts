import type { RedisClient } from './redis/client.js'
import type { Logger } from 'pino'
import type { Config } from './config.js'
import type { Database } from './db/client.js'
import type { Clock } from './lib/clock.js'
import type { InvalidationBus } from './lib/invalidation.js'
import { throttled } from './lib/throttle.js'
import { createEnqueuer } from './modules/actions/dispatch.js'
import { createActionExecution } from './modules/actions/execution.js'
import type { ActionRow } from './modules/actions/lifecycle.js'
import { createActionService } from './modules/actions/service.js'
import { createActionSweeps } from './modules/actions/sweeps.js'
import { createAlertService } from './modules/alerts/service.js'
import { createApiKeysService } from './modules/api-keys/service.js'
import { createAuditService } from './modules/audit/service.js'
import { createAuthService } from './modules/auth/service.js'
import { createSessionRevocation } from './modules/auth/sessions.js'
import { createBacktestService } from './modules/backtest/service.js'
import { createEventPublisher } from './modules/events/publisher.js'
import { createEventStreams } from './modules/events/reader.js'
import { createIncidentsService } from './modules/incidents/service.js'
import { createMetricTypes, createSeriesAdmission } from './modules/ingest/series.js'
import { createIngestService } from './modules/ingest/service.js'
import { createIntegrationsService } from './modules/integrations/service.js'
import { createRunbooksService } from './modules/runbooks/service.js'
import { countServices } from './modules/services/repository.js'
import { createServiceResolver } from './modules/services/resolver.js'
import { createServicesService } from './modules/services/service.js'
import { createPlanCache } from './modules/subscription/plan-cache.js'
import { createSubscriptionService } from './modules/subscription/service.js'
import { createRuleCache } from './modules/suppression/rule-cache.js'
import { createSuppressionService } from './modules/suppression/service.js'
import { createUsersService } from './modules/users/service.js'
import type { TypedQueue } from './redis/queues.js'

/** What the services are built from: the process's connections, its configuration and its clock. */
export interface Infrastructure {
  config: Config
  db: Database
  /** the state Redis */
  redis: RedisClient
  invalidation: InvalidationBus
  /** the actions queue's producer; absent where none runs (the reconciler dispatches instead) */
  actionsQueue?: TypedQueue<'actions'>
  clock: Clock
  log: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>
}

/**
 * The composition root: every feature service, built once per process from the same pieces, for the API
 * (decorated as `app.services`) and the worker alike. Services take only what they use.
 */
export function createServices(infra: Infrastructure) {
  const { config, db, redis, clock, log } = infra
  const onCacheError = throttled((err: unknown) => log.warn({ err }, 'redis cache unavailable'))
  const publish = createEventPublisher(redis, throttled((err) => log.warn({ err }, 'events not published')))
  const eventStreams = createEventStreams({ redis, caps: config.eventStreams })
  // A changed service is forgotten by the resolver, which registers unknown names through the services service.
  const services = createServicesService({
    db,
    redis,
    clock,
    resolver: { forget: (organizationId, name) => serviceResolver.forget(organizationId, name) }
  })
  const serviceResolver = createServiceResolver({ db, redis, invalidation: infra.invalidation, services, onCacheError })
  const ruleCache = createRuleCache(db, infra.invalidation)
  const plans = createPlanCache(db)
  const auth = createAuthService({
    db,
    clock,
    refreshTtlSeconds: config.refreshTokenTtlSeconds,
    announceRevoked: createSessionRevocation({ redis, invalidation: infra.invalidation, accessTtlSeconds: config.jwt.accessTtlSeconds })
  })
  const users = createUsersService({ db })
  const apiKeys = createApiKeysService({ db, redis, invalidation: infra.invalidation, clock })
  const subscription = createSubscriptionService({ db, clock, countServices, plans })
  const suppression = createSuppressionService({ db, redis, ruleCache, clock })
  const runbooks = createRunbooksService({ db, services, allowedHosts: config.webhookAllowedHosts, clock })
  const audit = createAuditService({ db })
  // Incidents ask remediation to propose when they open or escalate; actions look their incident up.
  const incidents = createIncidentsService({
    db,
    redis,
    publish,
    clock,
    onCacheError,
    remediation: {
      proposeFromRunbooks: (tx, ctx, incident) => actions.proposeFromRunbooks(tx, ctx, incident),
      settle: (proposals) => actions.settle(proposals as ActionRow[])
    }
  })
  const actions = createActionService({
    db,
    redis,
    publish,
    incidents,
    enqueue: infra.actionsQueue ? createEnqueuer(infra.actionsQueue) : undefined,
    clock,
    approvalTtlSeconds: config.actions.approvalTtlSeconds,
    allowedHosts: config.webhookAllowedHosts,
    onError: onCacheError
  })
  const actionExecution = createActionExecution({ db, publish, clock, leaseSeconds: config.actions.leaseSeconds })
  const actionSweeps = createActionSweeps({
    db,
    redis,
    clock,
    actions,
    incidents,
    verificationWindowSeconds: config.actions.verificationWindowSeconds
  })
  const alerts = createAlertService({ resolver: serviceResolver, incidents })
  const seriesAdmission = createSeriesAdmission({ redis })
  const metricTypes = createMetricTypes({ redis })
  const ingest = createIngestService({
    redis,
    resolver: serviceResolver,
    rules: ruleCache,
    incidents,
    admission: seriesAdmission,
    metricTypes,
    publish,
    clock,
    onQuotaError: throttled((err) => log.warn({ err }, 'ingest quota not counted in Redis'))
  })
  const integrations = createIntegrationsService({ ingest, alerts, metricTypes, admission: seriesAdmission, clock })
  const backtest = createBacktestService({ redis, services })
  return {
    publish,
    eventStreams,
    services,
    serviceResolver,
    ruleCache,
    plans,
    actions,
    actionExecution,
    actionSweeps,
    incidents,
    alerts,
    ingest,
    seriesAdmission,
    integrations,
    backtest,
    auth,
    users,
    apiKeys,
    subscription,
    suppression,
    runbooks,
    audit
  }
}
export type Services = ReturnType<typeof createServices>
