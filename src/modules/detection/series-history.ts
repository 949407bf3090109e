import Type, { type Static } from 'typebox'
import type { RedisClient } from '../../redis/client.js'
import { Timestamp } from '../../lib/schemas.js'
import { keys } from '../../redis/keys.js'
import { decodeModel, type MinuteSummary, type SeriesDescriptor } from './detector.js'
import { SERIES_KINDS, SeriesFields, type SeriesKind } from './series.js'

type Direction = 'up' | 'down' | 'both'

/** The ring score-samples.lua keeps per series: HISTORY_SLOTS minutes of HISTORY_SLOT_BYTES each. */
export const HISTORY_SLOTS = 60
const SLOT_BYTES = 24
const MINUTE_MS = 60_000

const finiteOrNull = (value: number) => (Number.isFinite(value) ? value : null)

export const HistoryPointSchema = Type.Object({
  at: Timestamp,
  value: Type.Union([Type.Number(), Type.Null()], { description: "the minute's last value scored (a counter's: its per-second rate)" }),
  min: Type.Union([Type.Number(), Type.Null()]),
  max: Type.Union([Type.Number(), Type.Null()]),
  expected: Type.Union([Type.Number(), Type.Null()], { description: 'what the baseline expected at the last sample of the minute' }),
  lower: Type.Union([Type.Number(), Type.Null()], {
    description: 'the band a value had to leave to be anomalous; null while the baseline learned, and on a side the metric does not alert on (its direction; none for a time-like series)'
  }),
  upper: Type.Union([Type.Number(), Type.Null()])
})
export type HistoryPoint = Static<typeof HistoryPointSchema>

export const SeriesHistorySchema = Type.Object({
  metric: Type.String(),
  ...SeriesFields,
  kind: Type.Enum(SERIES_KINDS),
  points: Type.Array(HistoryPointSchema, { description: 'one per minute with samples in the last hour, oldest first' })
})

const pointOf = ({ minute, last, lo, hi, expected, band }: MinuteSummary): HistoryPoint => {
  const learned = band >= 0 && Number.isFinite(band) && Number.isFinite(expected)
  return {
    at: new Date(minute * MINUTE_MS).toISOString(),
    value: finiteOrNull(last),
    min: finiteOrNull(lo),
    max: finiteOrNull(hi),
    expected: finiteOrNull(expected),
    lower: learned ? expected - band : null,
    upper: learned ? expected + band : null
  }
}

/**
 * A series' minutes within the hour before `now`, oldest first: the past ones from its history ring, the
 * one going on from its model (score-samples.lua writes a minute to the ring once the series moves past it).
 */
export function decodeHistory(ring: Buffer | null, current: MinuteSummary | null, now: number): HistoryPoint[] {
  const newest = Math.floor(now / MINUTE_MS)
  const recent = (minute: number) => minute > newest - HISTORY_SLOTS && minute <= newest
  const minutes = new Map<number, MinuteSummary>()
  for (let offset = 0; ring && offset + SLOT_BYTES <= ring.length; offset += SLOT_BYTES) {
    const minute = ring.readUInt32LE(offset)
    // An empty slot (0), or one last written more than an hour ago (the ring wrapped past it since).
    if (minute === 0 || !recent(minute)) continue
    const [last, lo, hi, expected, band] = [4, 8, 12, 16, 20].map((at) => ring.readFloatLE(offset + at)) as [number, number, number, number, number]
    minutes.set(minute, { minute, last, lo, hi, expected, band })
  }
  if (current && recent(current.minute)) minutes.set(current.minute, current)
  return [...minutes.values()].sort((a, b) => a.minute - b.minute).map(pointOf)
}

/**
 * The band as far as it alerts: a series watched upwards only has no lower edge (and downwards no upper
 * one); a time-like series never alerts, so it has none.
 */
function alertingBand(points: HistoryPoint[], direction: Direction, kind: SeriesKind): HistoryPoint[] {
  if (direction === 'both' && kind !== 'time') return points
  return points.map((point) => ({
    ...point,
    lower: direction === 'up' || kind === 'time' ? null : point.lower,
    upper: direction === 'down' || kind === 'time' ? null : point.upper
  }))
}

/**
 * A series of a service with its recent values; undefined when the service has no such series.
 * `directionOf` says which way the series' metric alerts (the service's detection settings).
 */
export async function seriesHistory(redis: RedisClient, serviceId: string, seriesId: string, now: number, directionOf: (metric: string) => Direction) {
  // (Both keys carry the service's hash tag: one MGET on a cluster too.)
  const [descriptor, [model, ring]] = await Promise.all([
    redis.hget(keys.series(serviceId), seriesId),
    redis.mgetBuffer(keys.model(serviceId, seriesId), keys.history(serviceId, seriesId))
  ])
  if (descriptor === null) return undefined
  const { m, l, k } = JSON.parse(descriptor) as SeriesDescriptor
  const points = decodeHistory(ring ?? null, decodeModel(model ?? null)?.currentMinute ?? null, now)
  return { metric: m, series: seriesId, labels: l, kind: k, points: alertingBand(points, directionOf(m), k) }
}
