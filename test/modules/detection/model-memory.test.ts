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
  for (let day = 0; day < 14; day++) {
    const samples = Array.from({ length: 288 }, (_, i) => {
      const time = T0 + day * DAY + i * STEP
      // A deterministic daily cycle with a small wobble: every profile bucket, both halves of the week, gets learned.
      return { series: seriesToScore('latency_ms'), value: 100 + 50 * Math.sin((2 * Math.PI * (time % DAY)) / DAY) + ((i * 7919) % 11) - 5, time, suppressedUpTo: null }
    })
    await scoreServiceBatch(redis, serviceId, detection, samples, samples.at(-1)!.time)
  }
  const key = keys.model(serviceId, seriesIdOf('latency_ms', {}))
  const model = decodeModel(await redis.getBuffer(key))
  expect(model).not.toBeNull()
  expect(model!.n).toBe(14 * 288)
  expect(model!.h0).toBeGreaterThan(0)
  expect(model!.h1).toBeGreaterThan(0)
  expect(await redis.strlen(key)).toBe(MODEL_BYTES)
  const bytes = Number(await redis.call('MEMORY', 'USAGE', key))
  expect(bytes).toBeGreaterThan(MODEL_BYTES)
  expect(bytes).toBeLessThanOrEqual(1024)
  expect(await redis.pttl(key)).toBeGreaterThan(0)
})
