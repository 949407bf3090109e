import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Queue, Worker, type Job } from 'bullmq'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { supervisedWorker, type Processor } from '../../src/jobs/supervisor.js'

const connection = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null })
afterAll(() => connection.quit())
const silent = { warn: () => {} }

/** A queue of its own, and workers made by `make` (the first may be crippled by the test). */
function setup(concurrency: number, make: (n: number, worker: Worker) => void = () => {}) {
  const prefix = `{test-supervisor-${randomUUID().slice(0, 8)}}`
  const queue = new Queue('jobs', { connection, prefix })
  let made = 0
  const create = (processor: Processor<{ n: number }>) => {
    const worker = new Worker<{ n: number }>('jobs', processor, { connection, prefix, concurrency })
    make(++made, worker)
    return worker
  }
  return { queue, create }
}

describe('supervised BullMQ worker', () => {
  it('a worker that stopped fetching jobs is replaced, and the waiting job runs once', async () => {
    // The first worker stops fetching at once, as a worker whose blocking connection never recovered does.
    const { queue, create } = setup(2, (n, worker) => {
      if (n === 1) void worker.pause(true)
    })
    const ran: number[] = []
    const processor = async (job: Job<{ n: number }>) => {
      ran.push(job.data.n)
    }
    const supervised = supervisedWorker(queue, create, processor, { checkEveryMs: 100, stuckAfterMs: 600, closeTimeoutMs: 1000, shutdownTimeoutMs: 5000, concurrency: 2, log: silent })
    try {
      await queue.add('job', { n: 1 })
      await expect.poll(() => ran, { timeout: 10_000, interval: 50 }).toEqual([1])
      expect(supervised.replacements()).toBe(1)
      await sleep(800)
      expect(ran).toEqual([1])
      expect(supervised.replacements()).toBe(1)
    } finally {
      await supervised.close()
      await queue.obliterate({ force: true })
      await queue.close()
    }
  })

  it('a worker whose slots are all busy is left alone however long jobs wait, and so is a paused queue', async () => {
    const { queue, create } = setup(1)
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    const ran: number[] = []
    const processor = async (job: Job<{ n: number }>) => {
      ran.push(job.data.n)
      if (job.data.n === 1) await held
    }
    const supervised = supervisedWorker(queue, create, processor, { checkEveryMs: 100, stuckAfterMs: 300, closeTimeoutMs: 1000, shutdownTimeoutMs: 5000, concurrency: 1, log: silent })
    try {
      await queue.add('job', { n: 1 })
      await expect.poll(() => ran, { timeout: 5000, interval: 50 }).toEqual([1])
      await queue.add('job', { n: 2 })
      await sleep(1200) // four times stuckAfterMs, job 2 waiting behind the held one
      expect(supervised.replacements()).toBe(0)
      release()
      await expect.poll(() => ran, { timeout: 5000, interval: 50 }).toEqual([1, 2])

      await queue.pause()
      await queue.add('job', { n: 3 })
      await sleep(1200)
      expect(supervised.replacements()).toBe(0)
      expect(ran).toEqual([1, 2])
      await queue.resume()
      await expect.poll(() => ran, { timeout: 5000, interval: 50 }).toEqual([1, 2, 3])
    } finally {
      release()
      await supervised.close()
      await queue.obliterate({ force: true })
      await queue.close()
    }
  })
})
