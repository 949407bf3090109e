import type { RedisClient } from '../../redis/client.js'
import { LRUCache } from 'lru-cache'
import type { Database, Executor } from '../../db/client.js'
import type { PageRequest } from '../../db/keyset.js'
import type { Severity } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import { actorRef, type Actor, type ChangeContext } from '../../lib/context.js'
import { InvalidTransitionError } from '../../lib/domain-errors.js'
import { keys, TTL } from '../../redis/keys.js'
import { listAudit } from '../audit/repository.js'
import type { AppEvent, PublishEvents } from '../events/publisher.js'
import type { ResolvedService } from '../services/resolver.js'
import {
  decideOnAnomalies,
  metricsOf,
  openIncident,
  severityOf,
  transition,
  type AnomalySignal,
  type IncidentEffects,
  type IncidentEvent
} from './lifecycle.js'
import {
  actionsOfIncident,
  findIncident,
  insertIncident,
  lastResolvedIncidentOfService,
  listIncidents,
  lockIncident,
  lockOpenIncidentByDedupKey,
  lockOpenIncidentOfService,
  lockQuietIncidents,
  presentIncident,
  saveIncidentChange,
  serializeCorrelation,
  type IncidentFilter,
  type IncidentRow,
  type IncidentView
} from './repository.js'

/**
 * What incidents need of remediation: the service's runbooks propose actions, inside the transaction that
 * opened or escalated an incident, and the proposals are settled (queued, announced) after it commits.
 * Declared here and wired in by the composition root, so incidents do not depend on actions.
 */
export interface Remediation<Proposal = unknown> {
  proposeFromRunbooks(tx: Executor, ctx: ChangeContext, incident: IncidentRow): Promise<Proposal[]>
  settle(proposals: Proposal[]): Promise<unknown>
}

export interface AlertInput {
  dedupKey: string
  action: 'trigger' | 'resolve'
  title: string
  severity: Severity
  details?: Record<string, unknown>
}

export interface Correlation {
  incident: ReturnType<typeof presentIncident>
  created: boolean
  events: AppEvent[]
}

/** The detector acts on its own behalf; the request id ties its changes to the ingestion that caused them. */
const DETECTOR: Actor = { type: 'system', id: 'detector' }
const AUTO_RESOLVER: Actor = { type: 'system', id: 'auto-resolve' }
const QUIET_BATCH = 200
/** How often an ongoing episode refreshes its open incident, at most (far below any quiet period worth having). */
const KEEP_OPEN_EVERY_MS = 5000
const NO_OPEN_INCIDENT = 'none'
/**
 * "Nothing open" is kept briefly: a resolve's cache delete can land after a concurrent re-open wrote the
 * incident's id and before a slower request writes "none", and for as long as that stale "none" lives,
 * warnings that do not open an incident are not attached to the open one.
 */
const NO_OPEN_INCIDENT_SECONDS = 60

/** One transaction's outcome for one incident: what to announce once it commits. */
interface Committed {
  incident: IncidentView
  effects: IncidentEffects
  proposals: unknown[]
}

/**
 * Every change to an incident goes through here: the lifecycle decides, the repository persists it with
 * its audit row, and the effects (open-incident cache, events, runbook proposals) follow the commit.
 */
export function createIncidentsService(deps: {
  db: Database
  redis: RedisClient
  publish: PublishEvents
  clock: Clock
  onCacheError: (err: unknown) => void
  remediation?: Remediation
}) {
  const { db, clock } = deps

  /** "Nothing open" never overwrites an id: a stale id only costs a Postgres lookup, a stale "none" would hide an incident. */
  async function rememberOpenIncident(serviceId: string, incidentId: string | null) {
    const key = keys.openIncident(serviceId)
    const write = incidentId
      ? deps.redis.set(key, incidentId, 'EX', TTL.openIncidentSeconds)
      : deps.redis.set(key, NO_OPEN_INCIDENT, 'EX', NO_OPEN_INCIDENT_SECONDS, 'NX')
    await write.catch(deps.onCacheError)
  }

  /** Whether the open-incident cache knows the service has nothing open (a cache failure knows nothing). */
  async function knownQuiet(serviceId: string) {
    const cached = await deps.redis.get(keys.openIncident(serviceId)).catch((err) => {
      deps.onCacheError(err)
      return null
    })
    return cached === NO_OPEN_INCIDENT
  }

  /** After an incident of the service is resolved by any path: the next anomaly looks in Postgres again. */
  async function forgetOpenIncident(serviceId: string) {
    await deps.redis.del(keys.openIncident(serviceId)).catch(deps.onCacheError)
  }

  const proposeIf = async (tx: Executor, ctx: ChangeContext, effects: IncidentEffects, row: IncidentRow) =>
    effects.proposeRunbooks && deps.remediation ? deps.remediation.proposeFromRunbooks(tx, ctx, row) : []

  /**
   * Applies a lifecycle event to a locked incident inside the caller's transaction: persisted with its
   * audit row, runbooks asked to propose when the change calls for it. Null when it changes nothing.
   */
  async function change(tx: Executor, ctx: ChangeContext, before: IncidentView, event: IncidentEvent): Promise<Committed | null> {
    const now = clock.now()
    const decided = transition(before, event, now)
    if (!decided) return null
    const incident = await saveIncidentChange(tx, ctx, before, decided, now)
    if (!incident) return null
    return { incident, effects: decided.effects, proposals: await proposeIf(tx, ctx, decided.effects, incident) }
  }

  /** After the commit: the cache, the proposals, and the events (returned when the caller publishes them itself). */
  async function announce(organizationId: string, committed: Committed, publish = true): Promise<AppEvent[]> {
    const { incident, effects, proposals } = committed
    if (effects.forgetOpenIncident && incident.dedupKey === null) await forgetOpenIncident(incident.serviceId)
    const events: AppEvent[] = effects.event ? [{ type: effects.event, data: presentIncident(incident) }] : []
    if (publish) await deps.publish(organizationId, events)
    if (proposals.length > 0) await deps.remediation!.settle(proposals)
    return events
  }

  /** A person acknowledges or resolves: 404 across tenants, 409 from a status the step does not start from. */
  async function decide(ctx: ChangeContext, id: string, event: IncidentEvent) {
    const committed = await db.transaction(async (tx) => {
      const before = await lockIncident(tx, ctx.organizationId, id)
      if (!before) throw errors.notFound('incident')
      try {
        return await change(tx, ctx, before, event)
      } catch (err) {
        if (err instanceof InvalidTransitionError) throw errors.invalidTransition(err.message)
        throw err
      }
    })
    if (!committed) throw errors.invalidTransition('the incident changed meanwhile; retry')
    await announce(ctx.organizationId, committed)
    return committed.incident
  }

  const acknowledge = (ctx: ChangeContext, id: string) => decide(ctx, id, { type: 'acknowledge', by: actorRef(ctx.actor) })
  const resolve = (ctx: ChangeContext, id: string, note?: string) => decide(ctx, id, { type: 'resolve', by: actorRef(ctx.actor), note })

  /**
   * Folds a service's new unsuppressed anomalies into its one open incident, opening (or, when it flaps,
   * re-opening) one when the trigger is met. Postgres decides, under a per-service advisory lock, so
   * concurrent batches converge on a single incident; `incidents:{serviceId}` only spares the lookup when
   * the cache knows there is nothing open and nothing to open. The events are returned for the caller to
   * publish with its own.
   */
  async function correlate(
    organizationId: string,
    service: ResolvedService,
    anomalies: AnomalySignal[],
    triggered: boolean,
    requestId?: string
  ): Promise<Correlation | null> {
    if (anomalies.length === 0) return null
    if (!triggered && (await knownQuiet(service.id))) return null
    const ctx = { organizationId, actor: DETECTOR, requestId }
    const outcome = await db.transaction(async (tx): Promise<(Committed & { created: boolean }) | null> => {
      await serializeCorrelation(tx, service.id)
      const open = (await lockOpenIncidentOfService(tx, service.id)) ?? null
      const lastResolved = open || !triggered ? null : ((await lastResolvedIncidentOfService(tx, service.id)) ?? null)
      const now = clock.now()
      switch (decideOnAnomalies({ open, lastResolved, triggered, quietPeriodSeconds: service.detection.quietPeriodSeconds, now })) {
        case 'none':
          return null
        case 'attach': {
          const committed = await change(tx, ctx, open!, { type: 'anomalies', anomalies })
          return committed && { ...committed, created: false }
        }
        case 'reopen': {
          const committed = await change(tx, ctx, lastResolved!, { type: 'reopen', anomalies })
          return committed && { ...committed, created: false }
        }
        case 'open': {
          const opened = openIncident({ title: `${metricsOf(anomalies).join(', ')} anomalous on ${service.name}`, severity: severityOf(anomalies), anomalies }, now)
          const incident = await insertIncident(
            tx,
            ctx,
            { ...opened.state, organizationId, serviceId: service.id, source: 'detector' },
            service.name,
            opened.effects.audit
          )
          return { incident, effects: opened.effects, proposals: await proposeIf(tx, ctx, opened.effects, incident), created: true }
        }
      }
    })
    await rememberOpenIncident(service.id, outcome?.incident.id ?? null)
    if (!outcome) return null
    const events = await announce(organizationId, outcome, false)
    return { incident: presentIncident(outcome.incident), created: outcome.created, events }
  }

  /**
   * An episode already attached goes on: the service's open detector incident (if any) is not quiet. No
   * audit row and no event: nothing about the incident changes but when it last saw an anomaly.
   */
  const keptOpen = new LRUCache<string, number>({ max: 10_000, ttl: KEEP_OPEN_EVERY_MS })
  async function keepOpen(serviceId: string) {
    // A long episode continues in every batch: one touch per service every few seconds is enough.
    if (keptOpen.has(serviceId)) return
    keptOpen.set(serviceId, 1)
    if (await knownQuiet(serviceId)) return
    await db.transaction(async (tx) => {
      const open = await lockOpenIncidentOfService(tx, serviceId)
      if (open) await change(tx, { organizationId: open.organizationId, actor: DETECTOR }, open, { type: 'ongoing' })
    })
  }

  /**
   * External alerts deduplicate by key within the organization: a trigger updates the open incident with
   * that key or opens one (a repeat that changes nothing writes nothing: `changed` false); a trigger after a
   * resolve opens a new one.
   */
  async function triggerAlert(ctx: ChangeContext, service: ResolvedService, input: AlertInput, source: 'alert' | 'alertmanager') {
    const outcome = await db.transaction(async (tx): Promise<{ committed: Committed | null; current: IncidentView }> => {
      await serializeCorrelation(tx, `${ctx.organizationId}:${input.dedupKey}`)
      // The open incident may belong to another service than the alert names now: it keeps its own.
      const open = await lockOpenIncidentByDedupKey(tx, ctx.organizationId, input.dedupKey)
      if (open) {
        const committed = await change(tx, ctx, open, { type: 'alert', severity: input.severity, title: input.title, details: input.details })
        return { committed, current: open }
      }
      const opened = openIncident({ title: input.title, severity: input.severity, metrics: [], details: input.details }, clock.now())
      const incident = await insertIncident(
        tx,
        ctx,
        { ...opened.state, organizationId: ctx.organizationId, serviceId: service.id, source, dedupKey: input.dedupKey },
        service.name,
        opened.effects.audit
      )
      return { committed: { incident, effects: opened.effects, proposals: await proposeIf(tx, ctx, opened.effects, incident) }, current: incident }
    })
    if (!outcome.committed) return { incident: presentIncident(outcome.current), changed: false }
    await announce(ctx.organizationId, outcome.committed)
    return { incident: presentIncident(outcome.committed.incident), changed: true }
  }

  /** An alert's resolve closes the open incident with its key, whatever its service; null when none is open. */
  async function resolveAlert(ctx: ChangeContext, dedupKey: string) {
    const committed = await db.transaction(async (tx) => {
      await serializeCorrelation(tx, `${ctx.organizationId}:${dedupKey}`)
      const open = await lockOpenIncidentByDedupKey(tx, ctx.organizationId, dedupKey)
      return open ? change(tx, ctx, open, { type: 'resolve', by: actorRef(ctx.actor) }) : null
    })
    if (!committed) return null
    await announce(ctx.organizationId, committed)
    return presentIncident(committed.incident)
  }

  /**
   * Resolves detector incidents whose service has had no anomaly for its quiet period. Runs on a timer in
   * the worker, so an incident resolves even when its service sends nothing more.
   */
  async function resolveQuiet(): Promise<number> {
    const committed = await db.transaction(async (tx) => {
      const out: Committed[] = []
      for (const due of await lockQuietIncidents(tx, QUIET_BATCH)) {
        const done = await change(tx, { organizationId: due.organizationId, actor: AUTO_RESOLVER }, due, { type: 'quiet' })
        if (done) out.push(done)
      }
      return out
    })
    for (const done of committed) await announce(done.incident.organizationId, done)
    return committed.length
  }

  /**
   * A verification verdict on an action's incident, inside the verifier's transaction; the returned
   * commit is announced with `announce` after it.
   */
  async function applyVerdict(tx: Executor, ctx: ChangeContext, incidentId: string, event: Extract<IncidentEvent, { type: 'recovered' | 'not_recovered' }>) {
    const before = await lockIncident(tx, ctx.organizationId, incidentId)
    return before ? change(tx, ctx, before, event) : null
  }

  async function list(organizationId: string, filter: IncidentFilter, page: PageRequest) {
    return listIncidents(db, organizationId, filter, page)
  }

  /** An incident with its timeline (its audit rows, oldest first) and its actions. */
  async function detail(organizationId: string, id: string) {
    const incident = await findIncident(db, organizationId, id)
    if (!incident) throw errors.notFound('incident')
    const [timeline, actions] = await Promise.all([
      listAudit(db, organizationId, { resourceType: 'incident', resourceId: incident.id, limit: 200, ascending: true }),
      actionsOfIncident(db, incident.id)
    ])
    return { incident, timeline, actions }
  }

  /** An incident of the organization, for remediation; 404 across tenants. */
  async function get(exec: Executor, organizationId: string, id: string) {
    const incident = await findIncident(exec, organizationId, id)
    if (!incident) throw errors.notFound('incident')
    return incident
  }

  return { list, detail, get, acknowledge, resolve, correlate, keepOpen, triggerAlert, resolveAlert, resolveQuiet, applyVerdict, announce }
}
export type IncidentsService = ReturnType<typeof createIncidentsService>
