// Hand-written shapes of the API replies the console reads (see openapi.yaml).

export type Role = 'agent' | 'operator' | 'admin' | 'owner'
export type Plan = 'free' | 'team' | 'enterprise'
export type Severity = 'warning' | 'critical'
export type IncidentStatus = 'open' | 'acknowledged' | 'resolved'
export type Labels = Record<string, string>

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  code?: string
}

export interface Limits {
  maxServices: number | null
  autoRemediation: boolean
  ingestPerMinute: number
  requestsPerMinute: number
  maxSeriesPerWrite: number
  maxSamplesPerWrite: number
  backtestsPerMinute: number
  activeSeries: number
  suppressionRules: number
}

export interface User {
  id: string
  email: string
  role: Role
  createdAt: string
}

export interface Me {
  user: User | null
  apiKey: { id: string; name: string; role: Role } | null
  organization: { id: string; name: string; plan: Plan }
  role: Role
  plan: Plan
  limits: Limits
}

export interface SessionReply {
  csrfToken: string
  me: Me | null
  queueDashboard: boolean
  /** the browser holds a refresh cookie: a null `me` may be renewed */
  renewable: boolean
}

export interface SeriesRef {
  id: string
  metric: string
  labels: Labels
}

export interface Incident {
  id: string
  serviceId: string
  service: string
  title: string
  severity: Severity
  status: IncidentStatus
  flapping: boolean
  source: 'detector' | 'alert' | 'alertmanager'
  dedupKey: string | null
  metrics: string[]
  series: SeriesRef[]
  anomalyCount: number
  peakZScore: number | null
  details: Record<string, unknown> | null
  openedAt: string
  acknowledgedAt: string | null
  acknowledgedBy: string | null
  resolvedAt: string | null
  resolvedBy: string | null
  resolutionNote: string | null
}

export interface AuditEntry {
  id: string
  at: string
  actor: { type: 'user' | 'api_key' | 'system'; id: string | null }
  action: string
  resourceType: string
  resourceId: string
  before: unknown
  after: unknown
  requestId: string | null
}

export type ActionStatus =
  | 'pending_approval'
  | 'approved'
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'rejected'
  | 'expired'
  | 'needs_review'

export interface Action {
  id: string
  incidentId: string
  serviceId: string
  runbookId: string | null
  type: 'webhook' | 'dry_run'
  params: Record<string, unknown>
  reason: string | null
  status: ActionStatus
  statusReason: string | null
  requestedBy: string
  approvedBy: string | null
  attempts: number
  result: Record<string, unknown> | null
  error: string | null
  verification: { state: 'pending' | 'recovered' | 'not_recovered' | 'skipped'; details: Record<string, unknown> | null }
  createdAt: string
  approvedAt: string | null
  startedAt: string | null
  finishedAt: string | null
  expiresAt: string
}

export interface IncidentDetail extends Incident {
  timeline: AuditEntry[]
  actions: Action[]
}

export interface Anomaly {
  kind: 'start' | 'escalation'
  metric: string
  series: string
  labels: Labels
  value: number
  expected: number
  zScore: number
  severity: Severity
  at: string
  suppressed: boolean
  confirmed: boolean
}

export interface PreviewExample extends Anomaly {
  service: string
}

export interface PreviewReply {
  matches: number
  examined: number
  examples: PreviewExample[]
}

export type Direction = 'up' | 'down' | 'both'
export type Seasonality = 'auto' | 'none' | 'daily' | 'weekly'

export interface MetricDetection {
  direction: Direction
  zThreshold?: number
}

export interface Detection {
  zThreshold: number
  minSamples: number
  minSpanSeconds: number
  seasonality: Seasonality
  quietPeriodSeconds: number
  /** Not always present in replies (openapi lists it only in request bodies). */
  confirmSeconds?: number
  openAfterWarnings: number
  warningWindowSeconds: number
  metrics: Record<string, MetricDetection>
}

export interface Service {
  id: string
  name: string
  description: string | null
  environment: string | null
  detection: Detection
  createdAt: string
  updatedAt: string
}

export interface Baseline {
  metric: string
  series: string
  labels: Labels
  kind: 'gauge' | 'counter' | 'time' | 'bucket'
  mean: number
  stddev: number
  samples: number
  state: 'learning' | 'ready'
  seasonal: boolean
  episode: { startedAt: string; lastAt: string; peakZScore: number; severity: Severity; confirmed: boolean } | null
  updatedAt: string
}

/** One minute of a series (counters: per-second rates); null where the minute has no value. */
export interface HistoryPoint {
  at: string
  value: number | null
  min: number | null
  max: number | null
  expected: number | null
  lower: number | null
  upper: number | null
}

export interface SeriesHistory {
  series: string
  metric: string
  labels: Labels
  kind: string
  points: HistoryPoint[]
}

export interface BacktestSample {
  metric?: string
  value: number
  timestamp: string | number
}

export interface BacktestRequest {
  samples?: BacktestSample[]
  csv?: string
  detection?: Partial<Detection>
}

export interface BacktestReply {
  rows: number
  metrics: number
  learning: number
  stale: number
  from: string | null
  to: string | null
  counts: {
    episodes: number
    escalations: number
    incidentsOpened: number
    incidentsEscalated: number
    incidentsReopened: number
    incidentsResolved: number
  }
  episodes: {
    metric: string
    startedAt: string
    startValue: number
    severity: Severity
    peakZScore: number
    escalatedAt: string | null
    lastAt: string | null
  }[]
  incidents: {
    openedAt: string
    severity: Severity
    metrics: string[]
    anomalyCount: number
    peakZScore: number | null
    escalatedAt: string[]
    reopenedAt: string[]
    resolvedAt: string | null
    flapping: boolean
  }[]
  detection: Record<string, unknown>
}

export interface Schedule {
  weekdays: number[]
  start: string
  end: string
  timezone: string
}

export interface SuppressionRule {
  id: string
  service: string
  metric: string
  maxSeverity: Severity | null
  startsAt: string
  endsAt: string
  schedule: Schedule | null
  reason: string
  createdBy: string
  createdAt: string
  endedAt: string | null
  active: boolean
}

export interface SuppressionRuleInput {
  service?: string
  metric?: string
  maxSeverity?: Severity
  startsAt: string
  endsAt: string
  schedule?: Schedule
  reason: string
}

export interface ApiKey {
  id: string
  name: string
  role: Role
  prefix: string
  createdAt: string
  revokedAt: string | null
}

export interface CreatedApiKey {
  id: string
  name: string
  role: Role
  key: string
  prefix: string
  createdAt: string
}

export interface Subscription {
  plan: Plan
  status: 'active' | 'past_due' | 'canceled'
  limits: Limits
  updatedAt: string
}
