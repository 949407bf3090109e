import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { DetectionConfig } from '../../../src/db/schema/index.js'
import { decodeModel, MODEL_BYTES, scoreServiceBatch, seriesToScore } from '../../../src/modules/detection/detector.js'
import { seriesIdOf } from '../../../src/modules/detection/series.js'
import { keys } from '../../../src/redis/keys.js'
import { defineScripts } from '../../../src/redis/scripts.js'
import { DETECTION_DEFAULTS } from '../../../src/modules/services/schemas.js'

let redis: Redis
beforeAll(() => {
  redis = new Redis(process.env.REDIS_URL!)
  defineScripts(redis)
})
afterAll(() => redis.quit())

const detection: DetectionConfig = { ...DETECTION_DEFAULTS, metrics: {} }

it('a series model stays within 1 KiB of Redis memory after 14 days of 5-minute samples', async () => {
  const serviceId = randomUUID()
  const T0 = Date.UTC(2024, 0, 1)
  const STEP = 5 * 60_000
  const DAY = 86_400_000
  const samples = (day: number) =>
    Array.from({ length: 288 }, (_, i) => {
      const time = T0 + day * DAY + i * STEP
      // A deterministic daily cycle with a small wobble: every profile bucket, both halves of the week, gets learned.
      return { series: seriesToScore('latency_ms'), value: 100 + 50 * Math.sin((2 * Math.PI * (time % DAY)) / DAY) + ((i * 7919) % 11) - 5, time, suppressedUpTo: null }
    })
  for (let day = 0; day < 14; day++) await scoreServiceBatch(redis, serviceId, detection, samples(day), samples(day).at(-1)!.time)
  const key = keys.model(serviceId, seriesIdOf('latency_ms', {}))
  const model = decodeModel(await redis.getBuffer(key))
  expect(model).not.toBeNull()
  expect(model!.n).toBe(14 * 288)
  expect(model!.h0).toBeGreaterThan(0)
  expect(model!.h1).toBeGreaterThan(0)
  // The model's scalars include the summary of its current minute, for the console's chart.
  expect(await redis.strlen(key)).toBe(MODEL_BYTES)
  expect(model!.currentMinute).toMatchObject({ minute: Math.floor(samples(13).at(-1)!.time / 60_000) })
  const bytes = Number(await redis.call('MEMORY', 'USAGE', key))
  expect(bytes).toBeGreaterThan(MODEL_BYTES)
  expect(bytes).toBeLessThanOrEqual(1024)
  expect(await redis.pttl(key)).toBeGreaterThan(0)
  // The minute history beside it: 60 slots of 24 bytes, for the last hour.
  const history = keys.history(serviceId, seriesIdOf('latency_ms', {}))
  expect(await redis.strlen(history)).toBe(60 * 24)
  expect(Number(await redis.call('MEMORY', 'USAGE', history))).toBeLessThanOrEqual(1700) // 1,656 measured
  expect(await redis.pttl(history)).toBeGreaterThan(0)
})

it('a model of the previous version (7, without the minute summary) is carried over, not relearned', async () => {
  const serviceId = randomUUID()
  const T0 = Date.UTC(2024, 0, 1)
  const sample = (i: number) => ({ series: seriesToScore('queue_depth'), value: 50 + (i % 5), time: T0 + i * 60_000, suppressedUpTo: null })
  const warm = Array.from({ length: 100 }, (_, i) => sample(i))
  await scoreServiceBatch(redis, serviceId, detection, warm, warm.at(-1)!.time)
  const key = keys.model(serviceId, seriesIdOf('queue_depth', {}))
  const current = (await redis.getBuffer(key))!
  const learned = decodeModel(current)!
  // The same model as version 7 wrote it: 35 scalars, then the profile.
  const v7 = Buffer.concat([current.subarray(0, 35 * 8), current.subarray(41 * 8)])
  v7.writeDoubleLE(7, 0)
  await redis.set(key, v7, 'KEEPTTL')
  expect(decodeModel(v7)).toMatchObject({ n: 100, m: learned.m, currentMinute: null })

  await scoreServiceBatch(redis, serviceId, detection, [sample(100)], sample(100).time)
  const upgraded = decodeModel(await redis.getBuffer(key))!
  expect(upgraded.v).toBe(8)
  expect(upgraded.n).toBe(101)
  expect(upgraded.profile).toEqual(learned.profile.map((value, i) => (i + 1 === learned.cb ? upgraded.profile[i] : value)))
  expect(upgraded.currentMinute).toMatchObject({ minute: Math.floor(sample(100).time / 60_000), last: 50 })
})
