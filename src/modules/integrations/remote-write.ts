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

/** What one write may hold; past it, decoding stops at once (nothing more is read or built). */
export interface WriteBounds {
  series: number
  samples: number
}
/** Labels kept per series: more than MAX_LABELS plus the two the mapping drops, so a series past it is skipped anyway. */
const MAX_DECODED_LABELS = 40
/** Metadata entries read per write (Prometheus sends one per metric family); more are skipped. */
const MAX_METADATA = 20_000

/** Protobuf wire types. */
const VARINT = 0
const FIXED64 = 1
const LENGTH_DELIMITED = 2

const malformed = (message: string) =>
  errors.validation('body is not a remote_write WriteRequest', [{ path: '/body', message }])

/**
 * Snappy-framed protobuf → series and metadata, read field by field so that the bounds hold while decoding:
 * the write past `bounds.series` series or `bounds.samples` samples is refused (402) before more of it is
 * read, and a series' labels past MAX_DECODED_LABELS are not kept. Anything malformed is a 400 (Prometheus
 * drops it, no retry). Labels are objects without a prototype: a label named `constructor` or `__proto__`
 * is a label like any other.
 */
export function decodeWriteRequest(body: Buffer, bounds: WriteBounds, plan: string): Decoded {
  let raw: Buffer
  try {
    raw = snappy.uncompress(body, MAX_UNCOMPRESSED_BYTES)
  } catch (err) {
    throw errors.validation('body is not snappy-compressed', [{ path: '/body', message: String(err instanceof Error ? err.message : err) }])
  }
  const reader = protobuf.Reader.create(raw)
  const series: Series[] = []
  const metadata = new Map<string, MetadataType>()
  let samples = 0
  let metadataRead = 0
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32()
      const field = tag >>> 3
      if (field === 1 || field === 3) {
        if ((tag & 7) !== LENGTH_DELIMITED) throw malformed(`field ${field} has wire type ${tag & 7}`)
        const end = reader.uint32() + reader.pos
        if (end > reader.len) throw malformed('a message runs past the end of the body')
        if (field === 1) {
          if (series.length === bounds.series) {
            throw errors.planLimit(`more than ${bounds.series} series in one write; the ${plan} plan allows ${bounds.series} (lower max_samples_per_send or drop labels)`)
          }
          const read = readSeries(reader, end, bounds.samples - samples)
          if (!read) {
            throw errors.planLimit(`more than ${bounds.samples} samples in one write; the ${plan} plan allows ${bounds.samples} (lower max_samples_per_send)`)
          }
          samples += read.samples.length
          series.push(read)
        } else if (++metadataRead > MAX_METADATA) {
          reader.pos = end
        } else {
          readMetadata(reader, end, metadata)
        }
      } else {
        reader.skipType(tag & 7)
      }
    }
  } catch (err) {
    if (err instanceof RangeError) throw malformed(err.message) // protobufjs: read past the end
    throw err
  }
  return { series, metadata }
}

/** One TimeSeries up to `end`; undefined when it holds more than `room` samples. */
function readSeries(reader: protobuf.Reader, end: number, room: number): Series | undefined {
  const labels = Object.create(null) as Record<string, string>
  let labelCount = 0
  const samples: Series['samples'] = []
  while (reader.pos < end) {
    const tag = reader.uint32()
    const field = tag >>> 3
    if ((field === 1 || field === 2) && (tag & 7) !== LENGTH_DELIMITED) throw malformed(`TimeSeries field ${field} has wire type ${tag & 7}`)
    if (field === 1) {
      const labelEnd = reader.uint32() + reader.pos
      let name = ''
      let value = ''
      while (reader.pos < labelEnd) {
        const labelTag = reader.uint32()
        if (labelTag === ((1 << 3) | LENGTH_DELIMITED)) name = reader.string()
        else if (labelTag === ((2 << 3) | LENGTH_DELIMITED)) value = reader.string()
        else reader.skipType(labelTag & 7)
      }
      // Past the bound labels are not kept: the ones kept are already more than the mapping takes, so it
      // skips the series.
      if (++labelCount <= MAX_DECODED_LABELS) labels[name] = value
    } else if (field === 2) {
      if (samples.length === room) return undefined
      const sampleEnd = reader.uint32() + reader.pos
      let value = 0
      let timestamp = 0
      while (reader.pos < sampleEnd) {
        const sampleTag = reader.uint32()
        if (sampleTag === ((1 << 3) | FIXED64)) value = reader.double()
        else if (sampleTag === ((2 << 3) | VARINT)) timestamp = longToNumber(reader.int64())
        else reader.skipType(sampleTag & 7)
      }
      samples.push({ value, timestamp })
    } else {
      reader.skipType(tag & 7)
    }
  }
  return { labels, samples }
}

function readMetadata(reader: protobuf.Reader, end: number, into: Map<string, MetadataType>) {
  let type = 0
  let family = ''
  while (reader.pos < end) {
    const tag = reader.uint32()
    if (tag === ((1 << 3) | VARINT)) type = reader.int32()
    else if (tag === ((2 << 3) | LENGTH_DELIMITED)) family = reader.string()
    else reader.skipType(tag & 7)
  }
  // Only names a series could have (the same pattern as metric names, so at most 128 characters).
  if (METRIC_NAME.test(family)) into.set(family, METADATA_TYPES[type] ?? 'unknown')
}

const longToNumber = (value: number | protobuf.Long) => (typeof value === 'number' ? value : protobuf.util.LongBits.from(value).toNumber())

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
