/**
 * Ingestion benchmark: autocannon against the compiled API (real Postgres and Redis, production settings),
 * next to a hello-world Fastify route measured in the same run. Run with `npm run bench`.
 * Uses its own database (autopilot_bench) and Redis database 2, which it flushes.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { runMigrations } from '../src/db/migrate.js'

const DURATION = Number(process.env.BENCH_SECONDS ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10)
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/autopilot_bench'
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/2'
const API_PORT = 3901
const HELLO_PORT = 3902
const SERVICES = 10
const METRICS = 10

const children: ChildProcess[] = []
function start(script: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] })
  children.push(child)
  return child
}
async function waitFor(url: string) {
  for (let i = 0; i < 100; i++) {
    if (await fetch(url).then((r) => r.ok, () => false)) return
    await sleep(100)
  }
  throw new Error(`${url} did not come up`)
}
async function post(path: string, body: unknown, token?: string) {
  const res = await fetch(`http://127.0.0.1:${API_PORT}${path}`, {
    method: path === '/v1/subscription' ? 'PUT' : 'POST',
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

function run(title: string, options: autocannon.Options) {
  return new Promise<autocannon.Result>((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: DURATION, ...options, title }, (err, result) => (err ? reject(err) : resolve(result)))
  })
}

async function main() {
  await runMigrations(DATABASE_URL)
  const redis = new Redis(REDIS_URL)
  await redis.flushdb()
  redis.disconnect()

  start('dist/scripts/hello-server.js', { PORT: String(HELLO_PORT) })
  start('dist/src/server.js', {
    NODE_ENV: 'production',
    PORT: String(API_PORT),
    DATABASE_URL,
    REDIS_URL,
    JWT_SECRET: 'bench-secret-bench-secret-bench-secret-123',
    LOG_LEVEL: 'warn'
  })
  await waitFor(`http://127.0.0.1:${HELLO_PORT}/hello`)
  await waitFor(`http://127.0.0.1:${API_PORT}/health/live`)

  const signup = await post('/v1/auth/signup', { email: `bench-${Date.now()}@example.com`, password: 'benchmark passphrase', organization: 'Bench' })
  await post('/v1/subscription', { plan: 'enterprise' }, signup.accessToken)
  const { key } = await post('/v1/api-keys', { name: 'bench', role: 'agent' }, signup.accessToken)
  for (let round = 0; round < 30; round++) await post('/v1/metrics', { samples: batch(round) }, key)

  const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` }
  const hello = await run('hello-world', { url: `http://127.0.0.1:${HELLO_PORT}/hello` })
  const single = await run('ingest 1 sample', {
    url: `http://127.0.0.1:${API_PORT}/v1/metrics`,
    requests: Array.from({ length: 200 }, (_, i) => ({
      method: 'POST' as const,
      headers,
      body: JSON.stringify({ samples: [{ ...series[i % series.length]!, value: value(i) }] })
    }))
  })
  const batched = await run('ingest 100 samples', {
    url: `http://127.0.0.1:${API_PORT}/v1/metrics`,
    requests: Array.from({ length: 20 }, (_, round) => ({ method: 'POST' as const, headers, body: JSON.stringify({ samples: batch(100 + round) }) }))
  })

  const row = (name: string, r: autocannon.Result, samplesPerRequest: number) => ({
    name,
    'req/s': Math.round(r.requests.average),
    'samples/s': samplesPerRequest ? Math.round(r.requests.average * samplesPerRequest) : '',
    'p50 ms': r.latency.p50,
    'p99 ms': r.latency.p99,
    'vs hello req/s': (r.requests.average / hello.requests.average).toFixed(2),
    errors: r.errors + r.timeouts + r.non2xx
  })
  const table = [row('hello-world GET', hello, 0), row('POST /v1/metrics, 1 sample', single, 1), row('POST /v1/metrics, 100 samples', batched, 100)]
  console.log(`\n${CONNECTIONS} connections, ${DURATION}s each, ${SERVICES} services × ${METRICS} metrics\n`)
  console.table(table)
  console.log('\n| run | req/s | samples/s | p50 ms | p99 ms | req/s vs hello-world | errors |\n|---|---|---|---|---|---|---|')
  for (const r of table) console.log(`| ${r.name} | ${r['req/s']} | ${r['samples/s']} | ${r['p50 ms']} | ${r['p99 ms']} | ${r['vs hello req/s']} | ${r.errors} |`)
}

try {
  await main()
} finally {
  for (const child of children) child.kill('SIGTERM')
}
