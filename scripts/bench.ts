/**
 * Ingestion benchmark: autocannon against the compiled API (real Postgres and Redis, production settings),
 * next to a hello-world Fastify route measured in the same run. Run with `npm run bench`.
 * Uses its own database (autopilot_bench) and Redis database 2, which it flushes.
 *
 * This machine's speed drifts by ±20% from one minute to the next, so the scenarios run interleaved in
 * BENCH_ROUNDS rounds (hello-world, then each API scenario) after a 2 s warm-up of each, and the report
 * gives medians, each API run compared with the hello-world run of its own round, and the CPU time the API
 * process and Redis spent per request (steadier than throughput here).
 *
 * Environment: BENCH_SECONDS (per run, default 5), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (10),
 * BENCH_RUNS (subset of single,batch), BENCH_VARIANTS (comma-separated compiled builds to compare, default
 * `dist`; each runs as its own API server), BENCH_CPU_PROFILE_DIR (write V8 CPU profiles of the API there).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { runMigrations } from '../src/db/migrate.js'

const DURATION = Number(process.env.BENCH_SECONDS ?? 5)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const WARMUP_SECONDS = 2
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10)
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/autopilot_bench'
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/2'
const RUNS = new Set((process.env.BENCH_RUNS ?? 'single,batch').split(','))
const VARIANTS = (process.env.BENCH_VARIANTS ?? 'dist').split(',')
const CPU_PROFILE_DIR = process.env.BENCH_CPU_PROFILE_DIR
const HELLO_PORT = 3900
const FIRST_API_PORT = 3901
const SERVICES = 10
const METRICS = 10

const children: ChildProcess[] = []
function start(script: string, env: Record<string, string>, nodeArgs: string[] = []) {
  const child = spawn(process.execPath, [...nodeArgs, script], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] })
  children.push(child)
  return child.pid!
}

/** CPU time (µs) a process has used so far, from /proc (Linux). */
function processCpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS
}
const CLOCK_TICKS = 100
/** CPU time (µs) the Redis server has used so far. */
async function redisCpuMicros(redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0)
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1e6
}
async function waitFor(url: string) {
  for (let i = 0; i < 100; i++) {
    if (await fetch(url).then((r) => r.ok, () => false)) return
    await sleep(100)
  }
  throw new Error(`${url} did not come up`)
}
async function send(base: string, method: string, path: string, body: unknown, token?: string) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body)
  })
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
  return res.json()
}

// Noise around 100: the bench measures the normal path, not incident storms.
const value = (i: number) => 100 + Math.sin(i) * 2
const series = Array.from({ length: SERVICES * METRICS }, (_, i) => ({ service: `bench-${i % SERVICES}`, metric: `metric_${Math.floor(i / SERVICES)}` }))
const batch = (round: number) => series.map((s, i) => ({ ...s, value: value(round * 100 + i) }))

function run(url: string, options: Partial<autocannon.Options> = {}) {
  return new Promise<autocannon.Result>((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration: DURATION, ...options }, (err, result) => (err ? reject(err) : resolve(result)))
  })
}

/** Starts one API server from a compiled build and gives it an organization with warm baselines. */
async function startApi(dist: string, port: number) {
  const pid = start(
    `${dist}/src/server.js`,
    {
      NODE_ENV: 'production',
      PORT: String(port),
      DATABASE_URL,
      REDIS_URL,
      JWT_SECRET: 'bench-secret-bench-secret-bench-secret-123',
      LOG_LEVEL: 'warn'
    },
    CPU_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROFILE_DIR}`] : []
  )
  const base = `http://127.0.0.1:${port}`
  await waitFor(`${base}/health/live`)
  const signup = await send(base, 'POST', '/v1/auth/signup', { email: `bench-${port}-${Date.now()}@example.com`, password: 'benchmark passphrase', organization: 'Bench' })
  await send(base, 'PUT', '/v1/subscription', { plan: 'enterprise' }, signup.accessToken)
  const { key } = await send(base, 'POST', '/v1/api-keys', { name: 'bench', role: 'agent' }, signup.accessToken)
  for (let round = 0; round < 30; round++) await send(base, 'POST', '/v1/metrics', { samples: batch(round) }, key)

  const request = (body: unknown) => ({
    method: 'POST' as const,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body)
  })
  return [
    {
      pid,
      key: 'single',
      name: `${dist}: POST /v1/metrics, 1 sample`,
      samples: 1,
      options: { url: `${base}/v1/metrics`, requests: Array.from({ length: 200 }, (_, i) => request({ samples: [{ ...series[i % series.length]!, value: value(i) }] })) }
    },
    {
      pid,
      key: 'batch',
      name: `${dist}: POST /v1/metrics, 100 samples`,
      samples: 100,
      options: { url: `${base}/v1/metrics`, requests: Array.from({ length: 20 }, (_, round) => request({ samples: batch(100 + round) })) }
    }
  ].filter((scenario) => RUNS.has(scenario.key))
}

const median = (values: number[]) => {
  const sorted = [...values].sort((x, y) => x - y)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

async function main() {
  await runMigrations(DATABASE_URL)
  const redis = new Redis(REDIS_URL)
  await redis.flushdb()

  start('dist/scripts/hello-server.js', { PORT: String(HELLO_PORT) })
  await waitFor(`http://127.0.0.1:${HELLO_PORT}/hello`)
  const scenarios = []
  for (const [i, dist] of VARIANTS.entries()) scenarios.push(...(await startApi(dist, FIRST_API_PORT + i)))

  // Warm-up (not counted): every server's JIT sees its scenario's traffic before the first round.
  await run(`http://127.0.0.1:${HELLO_PORT}/hello`, { duration: WARMUP_SECONDS })
  for (const scenario of scenarios) await run(scenario.options.url, { ...scenario.options, duration: WARMUP_SECONDS })

  const hello = { name: 'hello-world GET', samples: 0, results: [] as autocannon.Result[], ratios: [] as number[], apiCpu: [] as number[], redisCpu: [] as number[] }
  const measured = scenarios.map((s) => ({ ...s, results: [] as autocannon.Result[], ratios: [] as number[], apiCpu: [] as number[], redisCpu: [] as number[] }))
  for (let round = 0; round < ROUNDS; round++) {
    const baseline = await run(`http://127.0.0.1:${HELLO_PORT}/hello`)
    hello.results.push(baseline)
    hello.ratios.push(1)
    for (const scenario of measured) {
      const [api, server] = [processCpuMicros(scenario.pid), await redisCpuMicros(redis)]
      const result = await run(scenario.options.url, scenario.options)
      scenario.apiCpu.push((processCpuMicros(scenario.pid) - api) / result.requests.total)
      scenario.redisCpu.push(((await redisCpuMicros(redis)) - server) / result.requests.total)
      scenario.results.push(result)
      scenario.ratios.push(result.requests.average / baseline.requests.average)
    }
  }

  redis.disconnect()
  const table = [hello, ...measured].map(({ name, samples, results, ratios, apiCpu, redisCpu }) => {
    const rate = median(results.map((r) => r.requests.average))
    return {
      name,
      'req/s': Math.round(rate),
      'samples/s': samples ? Math.round(rate * samples) : '',
      'p50 ms': median(results.map((r) => r.latency.p50)),
      'p99 ms': median(results.map((r) => r.latency.p99)),
      'vs hello req/s': median(ratios).toFixed(2),
      'rounds (req/s)': results.map((r) => Math.round(r.requests.average)).join(' '),
      'API CPU µs/req': apiCpu.length ? Math.round(median(apiCpu)) : '',
      'Redis CPU µs/req': redisCpu.length ? Math.round(median(redisCpu)) : '',
      errors: results.reduce((sum, r) => sum + r.errors + r.timeouts + r.non2xx, 0)
    }
  })
  console.log(`\n${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${DURATION}s, ${SERVICES} services × ${METRICS} metrics, medians\n`)
  console.table(table)
  console.log(
    '\n| run | req/s | samples/s | p50 ms | p99 ms | req/s vs hello-world (same round) | per round req/s | API CPU µs/req | Redis CPU µs/req | errors |\n|---|---|---|---|---|---|---|---|---|---|'
  )
  for (const r of table) {
    console.log(
      `| ${r.name} | ${r['req/s']} | ${r['samples/s']} | ${r['p50 ms']} | ${r['p99 ms']} | ${r['vs hello req/s']} | ${r['rounds (req/s)']} | ${r['API CPU µs/req']} | ${r['Redis CPU µs/req']} | ${r.errors} |`
    )
  }
}

try {
  await main()
} finally {
  for (const child of children) child.kill('SIGTERM')
}
