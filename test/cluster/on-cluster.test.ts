import { Cluster } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { useApp } from '../helpers.js'

const ctx = useApp()

describe('npm run test:cluster', () => {
  it('runs the suites with both roles on the Redis Cluster it started', async () => {
    expect(process.env.REDIS_URL).toMatch(/^redis\+cluster:\/\//)
    expect(ctx.config.queueRedisUrl).toBe(process.env.QUEUE_REDIS_URL)
    expect(ctx.app.redis).toBeInstanceOf(Cluster)
    expect(ctx.app.queueRedis).toBeInstanceOf(Cluster)
    expect((ctx.app.redis as Cluster).nodes('master').length).toBe(3)
  })
})
