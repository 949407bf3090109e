import protobuf from 'protobufjs'
import snappy from 'snappyjs'
import { errors } from '../../errors.js'
import type { MetadataType } from '../detection/series.js'
import { METRIC_NAME_PATTERN } from '../services/schemas.js'

const METRIC_NAME = new RegExp(METRIC_NAME_PATTERN)

/** Prometheus remote_write 1.0 `WriteRequest` (prompb), the fields this service reads. */
const root = protobuf.Root.fromJSON({
  nested: {
    prometheus: {
      nested: {
        WriteRequest: {
          fields: { timeseries: { rule: 'repeated', type: 'TimeSeries', id: 1 }, metadata: { rule: 'repeated', type: 'MetricMetadata', id: 3 } }
        },
        MetricMetadata: {
          fields: { type: { type: 'int32', id: 1 }, metricFamilyName: { type: 'string', id: 2 }, help: { type: 'string', id: 4 }, unit: { type: 'string', id: 5 } }
        },
        TimeSeries: {
          fields: {
            labels: { rule: 'repeated', type: 'Label', id: 1 },
            samples: { rule: 'repeated', type: 'Sample', id: 2 }
          }
        },
        Label: { fields: { name: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        Sample: { fields: { value: { type: 'double', id: 1 }, timestamp: { type: 'int64', id: 2 } } }
      }
    }
  }
})
export const WriteRequest = root.lookupType('prometheus.WriteRequest')

export interface Series {
  labels: Record<string, string>
  samples: { value: number; timestamp: number }[]
}

/** prompb MetricMetadata.MetricType, by number. */
const METADATA_TYPES: MetadataType[] = ['unknown', 'counter', 'gauge', 'histogram', 'gaugehistogram', 'summary', 'info', 'stateset']

export interface Decoded {
  series: Series[]
  /** metric family → type, from the request's metadata (Prometheus sends it apart from samples, every minute) */
  metadata: Map<string, MetadataType>
}

/** Decompressed bodies above this are refused (a snappy bomb must not exhaust memory). */
export const MAX_UNCOMPRESSED_BYTES = 32 * 1024 * 1024

/** Labels as an object without a prototype: a label named `constructor` or `__proto__` is a label like any other. */
function labelsOf(pairs: { name: string; value: string }[]): Record<string, string> {
  const labels = Object.create(null) as Record<string, string>
  for (const { name, value } of pairs) labels[name] = value
  return labels
}

/** Snappy-framed protobuf → series and metadata; anything malformed is a 400 (Prometheus drops it, no retry). */
export function decodeWriteRequest(body: Buffer): Decoded {
  let raw: Buffer
  try {
    raw = snappy.uncompress(body, MAX_UNCOMPRESSED_BYTES)
  } catch (err) {
    throw errors.validation('body is not snappy-compressed', [{ path: '/body', message: String(err instanceof Error ? err.message : err) }])
  }
  // The decoded message is read as it is (no toObject copy): absent fields read as their defaults, int64
  // timestamps as Long objects or numbers.
  let message: {
    timeseries: { labels: { name: string; value: string }[]; samples: { value: number; timestamp: number | { toNumber(): number } }[] }[]
    metadata: { type: number; metricFamilyName: string }[]
  }
  try {
    message = WriteRequest.decode(raw) as unknown as typeof message
  } catch (err) {
    throw errors.validation('body is not a remote_write WriteRequest', [{ path: '/body', message: String(err instanceof Error ? err.message : err) }])
  }
  const metadata = new Map<string, MetadataType>()
  for (const entry of message.metadata) {
    // Only names a series could have (the same pattern as metric names, so at most 128 characters).
    if (METRIC_NAME.test(entry.metricFamilyName)) metadata.set(entry.metricFamilyName, METADATA_TYPES[entry.type] ?? 'unknown')
  }
  return {
    series: message.timeseries.map((series) => ({
      labels: labelsOf(series.labels),
      samples: series.samples.map((s) => ({ value: s.value, timestamp: typeof s.timestamp === 'number' ? s.timestamp : s.timestamp.toNumber() }))
    })),
    metadata
  }
}

/** Encoder for tests and tools: series → snappy-compressed WriteRequest. */
export function encodeWriteRequest(series: Series[], metadata: { family: string; type: MetadataType }[] = []): Buffer {
  const message = WriteRequest.fromObject({
    timeseries: series.map((s) => ({
      labels: Object.entries(s.labels).map(([name, value]) => ({ name, value })),
      samples: s.samples
    })),
    metadata: metadata.map(({ family, type }) => ({ type: METADATA_TYPES.indexOf(type), metricFamilyName: family }))
  })
  return snappy.compress(WriteRequest.encode(message).finish())
}
