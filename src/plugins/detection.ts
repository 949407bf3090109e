import fp from 'fastify-plugin'
import { throttled } from '../lib/throttle.js'
import { createDispatcher } from '../jobs/dispatch.js'
import { createActionService, type ActionService } from '../modules/actions/service.js'
import { createEventPublisher, type PublishEvents } from '../modules/events/publisher.js'
import { createIngestService, type IngestService } from '../modules/ingest/service.js'
import { createCorrelator, type Correlator } from '../modules/incidents/correlation.js'
import { createServiceResolver, type ServiceResolver } from '../modules/services/resolver.js'
import { createServicesService } from '../modules/services/service.js'
import { createRuleCache, type RuleCache } from '../modules/suppression/rule-cache.js'

declare module 'fastify' {
  interface FastifyInstance {
    serviceResolver: ServiceResolver
    ruleCache: RuleCache
    correlator: Correlator
    publishEvents: PublishEvents
    actions: ActionService
    ingest: IngestService
  }
}

/** The shared pieces of detection and remediation: name resolution, caches, correlation, actions, events. */
export default fp(
  async (app) => {
    const onCacheError = throttled((err: unknown) => app.log.warn({ err }, 'redis cache unavailable'))
    app.decorate(
      'serviceResolver',
      createServiceResolver({
        db: app.db,
        redis: app.redis,
        invalidation: app.invalidation,
        services: createServicesService({ db: app.db }),
        onCacheError
      })
    )
    app.decorate('ruleCache', createRuleCache(app.db, app.invalidation))
    app.decorate('publishEvents', createEventPublisher(app.redis, throttled((err) => app.log.warn({ err }, 'events not published'))))
    app.decorate(
      'actions',
      createActionService({
        db: app.db,
        redis: app.redis,
        publish: app.publishEvents,
        dispatch: createDispatcher(app.db, app.queues.actions),
        approvalTtlSeconds: app.config.actions.approvalTtlSeconds,
        allowedHosts: app.config.webhookAllowedHosts,
        onError: onCacheError
      })
    )
    app.decorate('correlator', createCorrelator({ db: app.db, redis: app.redis, onCacheError, runbooks: app.actions }))
    const ingest = createIngestService({
      redis: app.redis,
      resolver: app.serviceResolver,
      rules: app.ruleCache,
      correlator: app.correlator,
      publish: app.publishEvents,
      onQuotaError: throttled((err) => app.log.warn({ err }, 'ingest quota not counted in Redis'))
    })
    app.decorate('ingest', ingest)
    app.addHook('onClose', ingest.close)
  },
  { name: 'detection', dependencies: ['db', 'redis', 'queues'] }
)
