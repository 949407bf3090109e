/*
 * Scores the detector on a NAB-format corpus (see scripts/nab/corpus.ts) with NAB's own rules: every file
 * goes through the backtest (the live scoring script on scratch keys, default detection settings, the
 * same for every file) and the rows at which it lists an anomaly (episode starts and escalations, as
 * POST /v1/metrics would) are scored.
 *
 *   npm run eval:nab -- <corpus dir> [--min <score>] [--verbose]
 *
 * Needs a Redis (EVAL_REDIS_URL, else REDIS_URL, else redis://127.0.0.1:6379/0); no Postgres.
 * Exits 1 below --min.
 */
import { Redis } from 'ioredis'
import { DETECTION_DEFAULTS } from '../src/modules/services/schemas.js'
import { runBacktest } from '../src/modules/backtest/engine.js'
import { defineScripts } from '../src/redis/scripts.js'
import { readCorpus, type CorpusFile } from './nab/corpus.js'
import { normalize, PROFILE_NAMES, scoreFile } from './nab/score.js'

export interface Evaluation {
  scores: Record<string, number>
  categories: Record<string, { files: number; windows: number; found: number; falsePositives: number; flagged: number; rows: number; incidents: number }>
}

export async function evaluate(redis: Redis, corpus: CorpusFile[], verbose = false): Promise<Evaluation> {
  const detection = { ...DETECTION_DEFAULTS, metrics: {} }
  const detections = new Map<string, boolean[]>()
  const categories: Evaluation['categories'] = {}
  for (const file of corpus) {
    const result = await runBacktest(
      redis,
      detection,
      file.values.map((value, i) => ({ metric: 'value', value, time: file.timestamps[i]! }))
    )
    const flagged = new Set(result.marks.map((m) => m.time))
    const detected = file.timestamps.map((t) => flagged.has(t))
    detections.set(file.name, detected)
    const score = scoreFile(file.timestamps, file.windows, detected, 'standard')
    const category = (categories[file.name.split('/')[0]!] ??= { files: 0, windows: 0, found: 0, falsePositives: 0, flagged: 0, rows: 0, incidents: 0 })
    category.files++
    category.windows += score.windowsTotal
    category.found += score.windowsFound
    category.falsePositives += score.fp
    category.flagged += flagged.size
    category.rows += file.values.length
    category.incidents += result.incidents.length
    if (verbose) {
      console.log(`${file.name.padEnd(56)} windows ${score.windowsFound}/${score.windowsTotal}  false positives ${score.fp}  incidents ${result.incidents.length}  score ${score.score.toFixed(2)}`)
    }
  }
  const scores: Record<string, number> = {}
  for (const profile of PROFILE_NAMES) {
    const raw = corpus.reduce((sum, file) => sum + scoreFile(file.timestamps, file.windows, detections.get(file.name)!, profile).score, 0)
    scores[profile] = normalize(raw, profile, corpus)
  }
  return { scores, categories }
}

async function main() {
  const args = process.argv.slice(2)
  const dir = args.find((a) => !a.startsWith('--') && args[args.indexOf(a) - 1] !== '--min')
  if (!dir) {
    console.error('usage: npm run eval:nab -- <corpus dir> [--min <score>] [--verbose]')
    process.exit(2)
  }
  const min = args.includes('--min') ? Number(args[args.indexOf('--min') + 1]) : null
  const redis = new Redis(process.env.EVAL_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0')
  defineScripts(redis)
  try {
    const started = Date.now()
    const corpus = readCorpus(dir)
    const { scores, categories } = await evaluate(redis, corpus, args.includes('--verbose'))
    for (const [name, c] of Object.entries(categories)) {
      console.log(`${name.padEnd(24)} files ${c.files}  windows found ${c.found}/${c.windows}  false-positive rows ${c.falsePositives}  flagged rows ${c.flagged}/${c.rows}  incidents ${c.incidents}`)
    }
    for (const [profile, score] of Object.entries(scores)) console.log(`NAB ${profile} (${corpus.length} files): ${score.toFixed(2)}`)
    console.log(`evaluated ${corpus.reduce((s, f) => s + f.values.length, 0)} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    console.log(`nab standard=${scores.standard!.toFixed(2)}`)
    if (min !== null && scores.standard! < min) {
      console.error(`below the floor of ${min}`)
      process.exitCode = 1
    }
  } finally {
    redis.disconnect()
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main()
