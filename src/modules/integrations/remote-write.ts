import protobuf from 'protobufjs'
import snappy from 'snappyjs'
import { errors } from '../../errors.js'

/** Prometheus remote_write 1.0 `WriteRequest` (prompb), the fields this service reads. */
const root = protobuf.Root.fromJSON({
  nested: {
    prometheus: {
      nested: {
        WriteRequest: { fields: { timeseries: { rule: 'repeated', type: 'TimeSeries', id: 1 } } },
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

/** Decompressed bodies above this are refused (a snappy bomb must not exhaust memory). */
export const MAX_UNCOMPRESSED_BYTES = 32 * 1024 * 1024

/** Snappy-framed protobuf → series; anything malformed is a 400 (Prometheus drops it, no retry). */
export function decodeWriteRequest(body: Buffer): Series[] {
  let raw: Buffer
  try {
    raw = snappy.uncompress(body, MAX_UNCOMPRESSED_BYTES)
  } catch (err) {
    throw errors.validation('body is not snappy-compressed', [{ path: '/body', message: String(err instanceof Error ? err.message : err) }])
  }
  let message: { timeseries?: { labels?: { name: string; value: string }[]; samples?: { value: number; timestamp: number | { toNumber(): number } }[] }[] }
  try {
    message = WriteRequest.toObject(WriteRequest.decode(raw), { longs: Number, defaults: true }) as typeof message
  } catch (err) {
    throw errors.validation('body is not a remote_write WriteRequest', [{ path: '/body', message: String(err instanceof Error ? err.message : err) }])
  }
  return (message.timeseries ?? []).map((series) => ({
    labels: Object.fromEntries((series.labels ?? []).map((l) => [l.name, l.value])),
    samples: (series.samples ?? []).map((s) => ({ value: s.value, timestamp: Number(s.timestamp) }))
  }))
}

/** Encoder for tests and tools: series → snappy-compressed WriteRequest. */
export function encodeWriteRequest(series: Series[]): Buffer {
  const message = WriteRequest.fromObject({
    timeseries: series.map((s) => ({
      labels: Object.entries(s.labels).map(([name, value]) => ({ name, value })),
      samples: s.samples
    }))
  })
  return snappy.compress(WriteRequest.encode(message).finish())
}
