import { createHash } from 'node:crypto'
import Type, { type Static } from 'typebox'

/**
 * What a series is: a metric name plus its full label set. Its id is a stable hash of both (label order
 * does not matter), so `node_cpu_seconds_total{cpu="0",mode="idle"}` and `{cpu="1",mode="user"}` are two
 * series with two baselines.
 */
export type Labels = Record<string, string>

/** Label names as Prometheus allows them. */
export const LABEL_NAME_PATTERN = '^[a-zA-Z_][a-zA-Z0-9_]{0,127}$'
export const MAX_LABELS = 32
export const MAX_LABEL_VALUE_LENGTH = 1024

export const LabelsSchema = Type.Record(Type.String({ pattern: LABEL_NAME_PATTERN }), Type.String({ maxLength: MAX_LABEL_VALUE_LENGTH }), {
  maxProperties: MAX_LABELS,
  additionalProperties: false,
  description: 'the series\' labels besides its name (and the label that chose the service)'
})

/**
 * How a series' values are read:
 * - gauge: scored on its value;
 * - counter: scored on its per-second rate (a drop is a reset: the new value is the increase since);
 * - time: a time-like gauge (a timestamp, a boot or start time): learned, never alerted;
 * - bucket: a histogram bucket: not scored one by one (the histogram's _sum and _count are counters).
 */
export const SERIES_KINDS = ['gauge', 'counter', 'time', 'bucket'] as const
export type SeriesKind = (typeof SERIES_KINDS)[number]

/** A metric type as a client declares it: on a JSON sample, or in Prometheus remote_write metadata. */
export const DECLARED_TYPES = ['gauge', 'counter'] as const
export type DeclaredType = (typeof DECLARED_TYPES)[number]
/** Prometheus' MetricMetadata.MetricType, lower-cased. */
export type MetadataType = 'counter' | 'gauge' | 'histogram' | 'gaugehistogram' | 'summary' | 'info' | 'stateset' | 'unknown'

export const SeriesFields = {
  series: Type.String({ description: 'the stable id of the series: a hash of its metric name and label set' }),
  labels: Type.Record(Type.String(), Type.String())
}
export interface SeriesRef {
  id: string
  metric: string
  labels: Labels
}
export const SeriesRefSchema = Type.Object({ id: Type.String(), metric: Type.String(), labels: Type.Record(Type.String(), Type.String()) })
export type SeriesRefSchema = Static<typeof SeriesRefSchema>

/** The stable id of a series: 16 hex digits of SHA-256 over its name and its sorted labels (JSON-encoded: unambiguous). */
export function seriesIdOf(metric: string, labels: Labels): string {
  const names = Object.keys(labels).sort()
  return createHash('sha256')
    .update(JSON.stringify([metric, ...names.map((name) => [name, labels[name]])]))
    .digest('hex')
    .slice(0, 16)
}

/** A name that may be a time (`node_time_seconds`, `process_start_time_seconds`, `…_timestamp`, `…_max_time`)… */
const TIME_LIKE = /(^|_)(time|timestamp|mtime)(_seconds|_ms|_milliseconds)?$/
/** …whose value is one: seconds or milliseconds since the epoch between 2001 and 2286 (a latency never is). */
const isEpoch = (value: number) => (value >= 1e9 && value < 1e10) || (value >= 1e12 && value < 1e13)
const SUFFIXED = /^(.*)_(total|count|sum|bucket)$/

/**
 * The kind of a series from what is known of it, most specific first: a type declared on the sample, the
 * metadata Prometheus sent for its name or its family (`x_bucket`, `x_count`, `x_sum` of histogram or
 * summary `x`; `x_total` of counter `x`), then the naming conventions (`_total`, `_count`, `_sum` are
 * counters, `_bucket` a histogram bucket). A gauge whose name says it may be a time and whose value is a
 * Unix time is time-like (`api_response_time_ms` at 120 is a gauge).
 */
export function kindOf(
  metric: string,
  declared: DeclaredType | undefined,
  metadata: (family: string) => MetadataType | undefined,
  value: number
): SeriesKind {
  const type = declared ?? metadata(metric)
  const suffixed = SUFFIXED.exec(metric)
  if (type === 'counter') return 'counter'
  if (type === undefined || type === 'unknown') {
    const family = suffixed ? metadata(suffixed[1]!) : undefined
    const suffix = suffixed?.[2]
    if (family !== undefined && family !== 'unknown') {
      if (suffix === 'bucket' && (family === 'histogram' || family === 'gaugehistogram')) return 'bucket'
      if ((suffix === 'count' || suffix === 'sum') && (family === 'histogram' || family === 'summary')) return 'counter'
      if (suffix === 'total' && family === 'counter') return 'counter'
    } else if (suffix === 'bucket') {
      return 'bucket'
    } else if (suffix) {
      return 'counter'
    }
  }
  return isEpoch(value) && TIME_LIKE.test(metric) ? 'time' : 'gauge'
}
