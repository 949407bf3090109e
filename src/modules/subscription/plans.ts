import type { Plan } from '../../db/schema/index.js'

export interface PlanLimits {
  /** null = unlimited */
  maxServices: number | null
  autoRemediation: boolean
  /** Metric samples per minute an organization may ingest. */
  ingestPerMinute: number
  /** API requests per minute per credential (user token or API key). */
  requestsPerMinute: number
  /** Series in one Prometheus remote_write request (cardinality guard). */
  maxSeriesPerWrite: number
  /** samples in one Prometheus remote_write request */
  maxSamplesPerWrite: number
  /** Backtests per minute per organization (each replays up to 100,000 rows). */
  backtestsPerMinute: number
  /** Series (metric name + label set) with a sample in the last hour, per organization: the cardinality guard. */
  activeSeries: number
  /** Suppression rules not yet ended, per organization (every sample is matched against them). */
  suppressionRules: number
}

export const PLAN_LIMITS: Record<Plan, PlanLimits> = {
  free: { maxServices: 5, autoRemediation: false, ingestPerMinute: 60_000, requestsPerMinute: 600, maxSeriesPerWrite: 1_000, maxSamplesPerWrite: 10_000, backtestsPerMinute: 2, activeSeries: 5_000, suppressionRules: 20 },
  team: { maxServices: 50, autoRemediation: true, ingestPerMinute: 1_200_000, requestsPerMinute: 6_000, maxSeriesPerWrite: 10_000, maxSamplesPerWrite: 100_000, backtestsPerMinute: 10, activeSeries: 100_000, suppressionRules: 200 },
  enterprise: { maxServices: null, autoRemediation: true, ingestPerMinute: 12_000_000, requestsPerMinute: 1_200_000, maxSeriesPerWrite: 100_000, maxSamplesPerWrite: 1_000_000, backtestsPerMinute: 60, activeSeries: 2_000_000, suppressionRules: 1_000 }
}
