import { METRIC_NAME_PATTERN, SERVICE_NAME_PATTERN } from '../services/schemas.js'

const SERVICE_NAME = new RegExp(SERVICE_NAME_PATTERN)

const METRIC_NAME = new RegExp(METRIC_NAME_PATTERN)
export const LABEL_NAME = '^[a-zA-Z_][a-zA-Z0-9_]{0,63}$'

/**
 * The metric a series feeds: `__name__`, plus the values of the organization's allow-listed labels
 * (sorted by label), e.g. `http_requests_total.instance_a-80`. Undefined when no valid name results.
 */
export function metricOf(labels: Record<string, string | undefined>, allowlist: string[]): string | undefined {
  const name = labels.__name__
  if (!name) return undefined
  const parts = [...allowlist]
    .sort()
    .filter((label) => labels[label] !== undefined)
    .map((label) => `${label}_${labels[label]!.replace(/[^A-Za-z0-9_:-]+/g, '-')}`)
  const metric = [name, ...parts].join('.')
  return METRIC_NAME.test(metric) ? metric : undefined
}

/** The service a series or alert belongs to: label `service`, else `job`, made a valid service name. */
export function serviceOf(labels: Record<string, string | undefined>): string | undefined {
  const raw = labels.service ?? labels.job
  if (!raw) return undefined
  const name = raw.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 63)
  return SERVICE_NAME.test(name) ? name : undefined
}
