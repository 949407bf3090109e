import { sql } from 'drizzle-orm'
import { boolean, check, doublePrecision, index, integer, jsonb, pgTable, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core'
import { at, createdAt, id, oneOf, SEVERITIES } from './columns.js'
import { organizations } from './organizations.js'
import { services } from './services.js'

export const INCIDENT_STATUSES = ['open', 'acknowledged', 'resolved'] as const
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number]
export const INCIDENT_SOURCES = ['detector', 'alert', 'alertmanager'] as const
export interface IncidentSeries {
  id: string
  metric: string
  labels: Record<string, string>
}

export const incidents = pgTable(
  'incidents',
  {
    id: id(),
    organizationId: uuid('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    serviceId: uuid('service_id')
      .notNull()
      .references(() => services.id),
    title: text('title').notNull(),
    severity: text('severity', { enum: SEVERITIES }).notNull(),
    status: text('status', { enum: INCIDENT_STATUSES }).notNull().default('open'),
    flapping: boolean('flapping').notNull().default(false),
    source: text('source', { enum: INCIDENT_SOURCES }).notNull(),
    dedupKey: text('dedup_key'),
    metrics: text('metrics').array().notNull().default(sql`'{}'::text[]`),
    /** The series (metric + labels) whose anomalies it holds, the first 20. */
    series: jsonb('series').$type<IncidentSeries[]>().notNull().default([]),
    anomalyCount: integer('anomaly_count').notNull().default(0),
    peakZScore: doublePrecision('peak_z_score'),
    details: jsonb('details').$type<Record<string, unknown>>(),
    openedAt: at('opened_at').notNull().defaultNow(),
    lastAnomalyAt: at('last_anomaly_at'),
    acknowledgedAt: at('acknowledged_at'),
    acknowledgedBy: text('acknowledged_by'),
    resolvedAt: at('resolved_at'),
    /** A user id, an API key id, or "auto". */
    resolvedBy: text('resolved_by'),
    resolutionNote: text('resolution_note'),
    createdAt: createdAt(),
    updatedAt: at('updated_at').notNull().defaultNow()
  },
  (t) => [
    // Concurrent detectors converge on one open incident per service; alerts converge per dedup key.
    uniqueIndex('incidents_one_open_per_service')
      .on(t.serviceId)
      .where(sql`status <> 'resolved' AND dedup_key IS NULL`),
    uniqueIndex('incidents_one_open_per_dedup_key')
      .on(t.organizationId, t.dedupKey)
      .where(sql`status <> 'resolved' AND dedup_key IS NOT NULL`),
    index('incidents_organization_idx').on(t.organizationId, t.id),
    index('incidents_organization_status_idx').on(t.organizationId, t.status, t.id),
    index('incidents_service_idx').on(t.serviceId, t.id),
    check('incidents_status_check', sql.raw(`status IN (${oneOf(INCIDENT_STATUSES)})`)),
    check('incidents_severity_check', sql.raw(`severity IN (${oneOf(SEVERITIES)})`)),
    check('incidents_source_check', sql.raw(`source IN (${oneOf(INCIDENT_SOURCES)})`)),
    check(
      'incidents_resolution_check',
      sql`(status = 'resolved') = (resolved_at IS NOT NULL)`
    )
  ]
)
