/** Every key the service writes to the state Redis, in one place (see DESIGN.md, key schema). */
export const keys = {
  /** `{serviceId}` is a Redis Cluster hash tag: one service's keys share a slot, so one script can touch them all. */
  /** a series' packed model (level, spread, seasonal profile, episode): src/redis/scripts/score-samples.lua */
  model: (serviceId: string, seriesId: string) => `model:{${serviceId}}:${seriesId}`,
  /** a series' recent values, one 24-byte slot per minute for the last hour (score-samples.lua, series-history.ts) */
  history: (serviceId: string, seriesId: string) => `history:{${serviceId}}:${seriesId}`,
  /** hash: the service's series id → descriptor (metric, labels, kind), written with their models */
  series: (serviceId: string) => `series:{${serviceId}}`,
  /** sorted set: the organization's active series (`<serviceId>:<seriesId>`), score = last seen (ms) */
  activeSeries: (organizationId: string) => `active_series:{${organizationId}}`,
  /** hash: metric family → type, from the Prometheus metadata the organization's agents send */
  metricTypes: (organizationId: string) => `metric_types:{${organizationId}}`,
  recentAnomalies: (serviceId: string) => `recent_anomalies:{${serviceId}}`,
  /** sorted set: unsuppressed marks of the service's confirmed anomaly episodes (what opens incidents) */
  paging: (serviceId: string) => `paging:{${serviceId}}`,
  openIncident: (serviceId: string) => `incidents:{${serviceId}}`,
  events: (organizationId: string) => `events:${organizationId}`,
  /**
   * hash: the workflow mirror of one action; tagged `{organizationId}` like the pending list, so one
   * pipeline writes both (src/modules/actions/mirror.ts)
   */
  action: (organizationId: string, actionId: string) => `action:{${organizationId}}:${actionId}`,
  /** sorted set: the organization's actions awaiting approval, score = expiry (ms) */
  pendingActions: (organizationId: string) => `actions:pending:{${organizationId}}`,
  /** one organization's names share a slot, so a batch of them is looked up in one pipeline (src/modules/services/resolver.ts) */
  serviceByName: (organizationId: string, name: string) => `service:{${organizationId}}:${name}`,
  ingestQuota: (organizationId: string, minute: number) => `ingest_quota:${organizationId}:${minute}`,
  apiKeyAuth: (sha256: string) => `auth:apikey:${sha256}`,
  /** tombstone of a revoked login session, kept as long as an access token naming it can live */
  revokedSession: (sessionId: string) => `revoked_session:${sessionId}`,
  rateLimitPrefix: 'rate_limit:',
  /** Pub/sub channel: tells every process to drop an in-process cache entry. */
  invalidationChannel: 'autopilot:invalidate'
} as const

export const TTL = {
  apiKeyAuthSeconds: 300,
  baselineMs: 24 * 3_600_000,
  anomalyWindowMs: 3_600_000,
  openIncidentSeconds: 24 * 3600,
  eventsMs: 3_600_000,
  actionMirrorSeconds: 24 * 3600,
  serviceByNameSeconds: 300,
  ingestQuotaSeconds: 120,
  /** a series without a sample for this long no longer counts against the plan's active series */
  activeSeriesMs: 3_600_000,
  /** Prometheus resends metadata every minute; a family not resent for this long is forgotten */
  metricTypesSeconds: 3600
} as const
