import { LABEL_NAME_PATTERN, MAX_LABEL_VALUE_LENGTH, MAX_LABELS, type Labels } from '../detection/series.js'
import { METRIC_NAME_PATTERN, SERVICE_NAME_PATTERN } from '../services/schemas.js'

const SERVICE_NAME = new RegExp(SERVICE_NAME_PATTERN)
const METRIC_NAME = new RegExp(METRIC_NAME_PATTERN)
const LABEL_NAME = new RegExp(LABEL_NAME_PATTERN)

/** The label that chose a series' or an alert's service: `service`, else `job`. */
const serviceLabelOf = (labels: Record<string, string | undefined>) =>
  Object.hasOwn(labels, 'service') ? 'service' : Object.hasOwn(labels, 'job') ? 'job' : undefined

/** The service a series or alert belongs to: label `service`, else `job`, made a valid service name. */
export function serviceOf(labels: Record<string, string | undefined>): string | undefined {
  const label = serviceLabelOf(labels)
  const raw = label && labels[label]
  if (!raw) return undefined
  const name = raw.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 63)
  return SERVICE_NAME.test(name) ? name : undefined
}

export interface MappedSeries {
  service: string
  metric: string
  /** every label but `__name__` and the one that chose the service */
  labels: Labels
}

/**
 * A remote_write series as Autopilot reads it: its service, its metric (`__name__`) and the rest of its
 * labels, which with the metric make the series. Undefined when there is no usable service or name, or
 * when its labels are past the bounds (more than 32, a name Prometheus would not allow, a value over 1 KiB).
 */
export function seriesOf(labels: Record<string, string>): MappedSeries | undefined {
  const service = serviceOf(labels)
  const metric = labels.__name__
  if (!service || !metric || !METRIC_NAME.test(metric)) return undefined
  const serviceLabel = serviceLabelOf(labels)
  const rest: Labels = Object.create(null) as Labels
  let count = 0
  for (const name of Object.keys(labels)) {
    if (name === '__name__' || name === serviceLabel) continue
    const value = labels[name]!
    if (++count > MAX_LABELS || !LABEL_NAME.test(name) || value.length > MAX_LABEL_VALUE_LENGTH) return undefined
    rest[name] = value
  }
  return { service, metric, labels: rest }
}
