import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { evaluate } from '../../scripts/eval-nab.js'
import { readCorpus } from '../../scripts/nab/corpus.js'
import { defineScripts } from '../../src/redis/scripts.js'

/**
 * The labelled benchmark the detector is held to: NAB_DIR, else the workplace's copy beside this checkout
 * or at /work/shared/nab. The floor sits a little under the measured score (README, "Detection quality").
 */
const FLOOR = 58
const corpusDir = [process.env.NAB_DIR, join(process.cwd(), '../shared/nab'), '/work/shared/nab'].find(
  (dir): dir is string => dir !== undefined && existsSync(join(dir, 'combined_windows.json'))
)

describe.skipIf(!corpusDir)(`NAB score of the default detection (${corpusDir ?? 'no corpus found: set NAB_DIR'})`, () => {
  const redis = new Redis(process.env.REDIS_URL!)
  defineScripts(redis)
  afterAll(() => redis.quit())

  it(`scores at least ${FLOOR} on NAB's standard profile, through the backtest`, async () => {
    const { scores, categories } = await evaluate(redis, readCorpus(corpusDir!))
    console.log(`NAB standard ${scores.standard!.toFixed(2)}`, JSON.stringify(categories))
    expect(scores.standard).toBeGreaterThanOrEqual(FLOOR)
  }, 120_000)
})
