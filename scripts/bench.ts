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
 * Scenarios: `single` (JSON, 1 sample), `batch` (JSON, 100 samples) and `remote-write` (Prometheus
 * remote_write: snappy protobuf, 500 node_exporter-like series × 3 samples; each connection is its own
 * `instance`, so every series is sent in order as Prometheus does; the series are warmed past their
 * learning phase first; Redis `MEMORY USAGE` per series model is reported after the runs).
 *
 * Environment: BENCH_SECONDS (per run, default 5), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (10;
 * BENCH_REMOTE_WRITE_CONNECTIONS, 4, for remote_write: one per Prometheus shard),
 * BENCH_RUNS (subset of single,batch,remote-write, default all), BENCH_VARIANTS (comma-separated compiled
 * builds to compare, default `dist`; each runs as its own API server), BENCH_CPU_PROFILE_DIR (write V8 CPU
 * profiles of the API there).
 *
 * Redis Cluster: BENCH_REDIS_URL=redis+cluster://host:port,… runs against a cluster (the API gets it as
 * REDIS_URL and QUEUE_REDIS_URL); BENCH_CLUSTER_MASTERS=n starts a private one instead (test/servers.ts,
 * n masters, no replicas, stopped at the end). On a cluster every master is flushed, and Redis CPU is read
 * (INFO cpu) on every master: the report gives it per shard, and each shard's share of the total.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { Cluster, Redis } from 'ioredis'
import { parseRedisUrl } from '../src/redis/client.js'
import { runMigrations } from '../src/db/migrate.js'
import { encodeWriteRequest } from '../src/modules/integrations/remote-write.js'

const DURATION = Number(process.env.BENCH_SECONDS ?? 5)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const WARMUP_SECONDS = 2
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10)
/** Prometheus sends through a few shards at this volume, each one request at a time: one connection per shard. */
const REMOTE_WRITE_CONNECTIONS = Number(process.env.BENCH_REMOTE_WRITE_CONNECTIONS ?? 4)
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/autopilot_bench'
const CLUSTER_MASTERS = process.env.BENCH_CLUSTER_MASTERS ? Number(process.env.BENCH_CLUSTER_MASTERS) : undefined
let REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/2'
const RUNS = new Set((process.env.BENCH_RUNS ?? 'single,batch,remote-write').split(','))
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
/** CPU time (µs) a Redis server has used so far. */
async function redisCpuMicros(redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  const read = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0)
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1e6
}
/** The servers whose CPU is counted: the one server, or every master of a cluster (by port, for stable shard numbers). */
function shardsOf(redis: Redis | Cluster): Redis[] {
  if (!(redis instanceof Cluster)) return [redis]
  return redis.nodes('master').sort((a, b) => Number(a.options.port) - Number(b.options.port))
}
/** CPU time (µs) each shard has used so far. */
const shardCpuMicros = (shards: Redis[]) => Promise.all(shards.map(redisCpuMicros))
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

// Prometheus remote_write: each connection is one node_exporter (its own `instance`) of the service
// `node` (label `job`), 40 metric names × 12 label sets + 20 unlabelled gauges = 500 series, mostly
// gauges (noise around a level), 4 names counters (`*_total`, increasing). A request carries every
// series of its instance, REMOTE_WRITE_PER_SERIES samples each, REMOTE_WRITE_STEP_MS apart; the next
// request of that connection goes on from there, so a series' timestamps only increase, as Prometheus
// (which shards by series) sends them. Before the runs, REMOTE_WRITE_WARM_REQUESTS requests a minute
// apart per sample take every series past minSamples (30) and minSpanSeconds (1800), so the runs
// measure the scoring path, not the warm-up one.
const REMOTE_WRITE_PER_SERIES = 3
const REMOTE_WRITE_STEP_MS = 10
const REMOTE_WRITE_WARM_REQUESTS = 10
const REMOTE_WRITE_WARM_PER_SERIES = 4
const REMOTE_WRITE_WARM_STEP_MS = 60_000
/** The timelines start this far back: 40 min of warm-up, then 10 ms steps (about 170,000 requests per connection). */
const REMOTE_WRITE_START_AGO_MS = 2 * 3_600_000
/** The API refuses samples more than 5 minutes ahead of its clock; the bench stays 1 minute short of that. */
const REMOTE_WRITE_MAX_AHEAD_MS = 4 * 60_000

const range = (n: number) => Array.from({ length: n }, (_, i) => i)
const LABEL_SETS: Record<string, Record<string, string>[]> = {
  cpu: range(12).map((cpu) => ({ cpu: String(cpu) })),
  cpuMode: range(3).flatMap((cpu) => ['idle', 'user', 'system', 'iowait'].map((mode) => ({ cpu: String(cpu), mode }))),
  disk: ['sda', 'sdb', 'sdc', 'sdd', 'nvme0n1', 'nvme1n1', 'dm-0', 'dm-1', 'dm-2', 'md0', 'md1', 'sr0'].map((device) => ({ device })),
  filesystem: ['/', '/boot', '/boot/efi', '/home', '/var', '/var/lib/docker', '/tmp', '/srv', '/opt', '/run', '/run/lock', '/dev/shm'].map(
    (mountpoint, i) => ({ device: i < 9 ? `/dev/sda${i + 1}` : 'tmpfs', fstype: i === 2 ? 'vfat' : i < 9 ? 'ext4' : 'tmpfs', mountpoint })
  ),
  network: ['eth0', 'eth1', 'eth2', 'eth3', 'lo', 'docker0', 'br-0', 'veth0', 'veth1', 'veth2', 'veth3', 'wlan0'].map((device) => ({ device })),
  hwmon: ['platform_coretemp_0', 'pci0000:00_0000:00:18_3'].flatMap((chip) => range(6).map((i) => ({ chip, sensor: `temp${i + 1}` })))
}
const NODE_METRICS: [family: string, names: string[]][] = [
  ['cpu', ['node_cpu_scaling_frequency_hertz', 'node_cpu_scaling_frequency_max_hertz', 'node_cpu_scaling_frequency_min_hertz', 'node_cpu_online', 'node_cpu_core_throttles_total', 'node_softnet_backlog_len']],
  ['cpuMode', ['node_cpu_seconds_total']],
  ['disk', ['node_disk_io_now', 'node_disk_read_bytes_total', 'node_disk_written_bytes_total', 'node_disk_queue_depth', 'node_disk_read_latency_seconds', 'node_disk_write_latency_seconds', 'node_disk_utilisation_ratio', 'node_disk_saturation_ratio']],
  ['filesystem', ['node_filesystem_avail_bytes', 'node_filesystem_free_bytes', 'node_filesystem_size_bytes', 'node_filesystem_files', 'node_filesystem_files_free', 'node_filesystem_readonly', 'node_filesystem_device_error']],
  ['network', ['node_network_up', 'node_network_mtu_bytes', 'node_network_speed_bytes', 'node_network_transmit_queue_length', 'node_network_carrier', 'node_network_flags', 'node_network_receive_bandwidth_bytes', 'node_network_transmit_bandwidth_bytes', 'node_network_receive_drop_ratio', 'node_network_transmit_drop_ratio', 'node_network_address_assign_type', 'node_network_dormant']],
  ['hwmon', ['node_hwmon_temp_celsius', 'node_hwmon_temp_max_celsius', 'node_hwmon_temp_crit_celsius', 'node_hwmon_in_volts', 'node_hwmon_fan_rpm', 'node_hwmon_curr_amps']]
]
const NODE_GAUGES = [
  'node_load1', 'node_load5', 'node_load15', 'node_memory_MemTotal_bytes', 'node_memory_MemFree_bytes', 'node_memory_MemAvailable_bytes',
  'node_memory_Buffers_bytes', 'node_memory_Cached_bytes', 'node_memory_SwapTotal_bytes', 'node_memory_SwapFree_bytes', 'node_memory_Dirty_bytes',
  'node_memory_Active_bytes', 'node_memory_Inactive_bytes', 'node_procs_running', 'node_procs_blocked', 'node_entropy_available_bits',
  'node_filefd_allocated', 'node_filefd_maximum', 'node_sockstat_sockets_used', 'node_nf_conntrack_entries'
]

/** A small seeded PRNG (mulberry32): the same bodies every run. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** One node_exporter (instance 127.0.0.1:<9100 + slot>) and the clock of its samples. */
function nodeExporter(slot: number, start: number) {
  const rand = random(slot + 1)
  const base = { job: 'node', instance: `127.0.0.1:${9100 + slot}` }
  const labelled = NODE_METRICS.flatMap(([family, names]) => names.flatMap((name) => LABEL_SETS[family]!.map((labels) => ({ __name__: name, ...base, ...labels }))))
  const all = [...labelled, ...NODE_GAUGES.map((name) => ({ __name__: name, ...base }))].map((labels) => {
    const level = 10 ** (1 + 5 * rand())
    return { labels, counter: labels.__name__.endsWith('_total'), level, noise: level * (0.002 + 0.01 * rand()), perSecond: 10 ** (4 * rand()), value: level }
  })
  let last: number | undefined
  return {
    series: all.length,
    /** The next request: `perSeries` samples of every series, `stepMs` apart, the first `stepMs` after the previous request's last. */
    next(perSeries: number, stepMs: number): Buffer {
      const first = (last ?? start - stepMs) + stepMs
      const times = range(perSeries).map((k) => first + k * stepMs)
      // A counter grows by its rate × the time since its previous sample (whatever the step was then).
      const elapsed = times.map((t, k) => (k > 0 ? t - times[k - 1]! : last === undefined ? stepMs : t - last))
      last = times.at(-1)!
      if (last > Date.now() + REMOTE_WRITE_MAX_AHEAD_MS) {
        throw new Error(`remote-write: instance ${base.instance} ran out of timeline (samples would be less than a minute from the API's 5-minute future limit): shorten BENCH_SECONDS × BENCH_ROUNDS`)
      }
      return encodeWriteRequest(
        all.map((s) => ({
          labels: s.labels,
          samples: times.map((timestamp, k) => ({
            timestamp,
            value: s.counter ? (s.value += (s.perSecond * elapsed[k]! * (0.8 + 0.4 * rand())) / 1000) : s.level + s.noise * (2 * rand() - 1)
          }))
        }))
      )
    }
  }
}

function run(url: string, options: Partial<autocannon.Options> = {}) {
  return new Promise<autocannon.Result>((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration: DURATION, ...options }, (err, result) => (err ? reject(err) : resolve(result)))
  })
}

interface Scenario {
  pid: number
  key: string
  name: string
  /** samples per request */
  samples: number
  options: Partial<autocannon.Options> & { url: string }
  /** Before each run (warm-up or measured) of that many seconds. */
  prepare?: (seconds: number) => void
  /** After each run of that many seconds. */
  finish?: (seconds: number) => void
  /** After all runs: lines for the report. */
  report?: (redis: Redis | Cluster) => Promise<string[]>
}

/** Starts one API server from a compiled build and gives it an organization with warm baselines. */
async function startApi(dist: string, port: number): Promise<Scenario[]> {
  const pid = start(
    `${dist}/src/server.js`,
    {
      NODE_ENV: 'production',
      PORT: String(port),
      DATABASE_URL,
      REDIS_URL,
      QUEUE_REDIS_URL: REDIS_URL,
      JWT_SECRET: 'bench-secret-bench-secret-bench-secret-123',
      LOG_LEVEL: 'warn'
    },
    CPU_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROFILE_DIR}`] : []
  )
  const base = `http://127.0.0.1:${port}`
  await waitFor(`${base}/health/live`)
  const signup = await send(base, 'POST', '/v1/auth/signup', { email: `bench-${port}-${Date.now()}@example.com`, password: 'benchmark passphrase', organization: 'Bench' })
  // Enterprise: 12M samples/minute and 100,000 series per remote_write request (free: 60,000 and 1,000).
  await send(base, 'PUT', '/v1/subscription', { plan: 'enterprise' }, signup.accessToken)
  const { key } = await send(base, 'POST', '/v1/api-keys', { name: 'bench', role: 'agent' }, signup.accessToken)
  for (let round = 0; round < 30; round++) await send(base, 'POST', '/v1/metrics', { samples: batch(round) }, key)

  const request = (body: unknown) => ({
    method: 'POST' as const,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body)
  })
  const scenarios: Scenario[] = [
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
  ]
  if (RUNS.has('remote-write')) scenarios.push(await remoteWriteScenario(dist, base, key, pid))
  return scenarios.filter((scenario) => RUNS.has(scenario.key))
}

/**
 * The remote-write scenario. Connection i of every run is instance i: autocannon's setupClient gives each
 * connection its own request, whose setupRequest takes the next body from that instance's queue of
 * pre-encoded bodies (topped up between runs, from the busiest connection's rate so far), so a series'
 * samples go out in order, one request at a time, and a run never goes back in time.
 */
async function remoteWriteScenario(dist: string, base: string, key: string, pid: number): Promise<Scenario> {
  const url = `${base}/v1/integrations/prometheus/write`
  const headers = {
    'content-type': 'application/x-protobuf',
    'content-encoding': 'snappy',
    'x-prometheus-remote-write-version': '0.1.0',
    authorization: `Bearer ${key}`
  }
  const start = Date.now() - REMOTE_WRITE_START_AGO_MS
  const exporters = range(REMOTE_WRITE_CONNECTIONS).map((slot) => nodeExporter(slot, start))
  const seriesPerRequest = exporters[0]!.series
  const samples = seriesPerRequest * REMOTE_WRITE_PER_SERIES

  let short = 0
  let firstShort: string | undefined
  let anomalies = 0
  /** Counts a 200 answer that did not accept every sample (rejected ones, skipped series), and anomalies. */
  const checkReply = (body: string, expected: number) => {
    const reply = JSON.parse(body) as { accepted?: number; anomalies?: number }
    anomalies += reply.anomalies ?? 0
    if (reply.accepted === expected) return
    short++
    firstShort ??= body
  }
  // Warm-up of every series past its learning phase; also the check that the endpoint takes the bodies.
  for (let i = 0; i < REMOTE_WRITE_WARM_REQUESTS; i++) {
    for (const exporter of exporters) {
      const res = await fetch(url, { method: 'POST', headers, body: new Uint8Array(exporter.next(REMOTE_WRITE_WARM_PER_SERIES, REMOTE_WRITE_WARM_STEP_MS)) })
      const body = await res.text()
      if (!res.ok) throw new Error(`remote-write warm-up: ${res.status} ${body}`)
      checkReply(body, seriesPerRequest * REMOTE_WRITE_WARM_PER_SERIES)
    }
  }
  if (firstShort) console.warn(`remote-write warm-up: ${short} answers did not accept every sample, the first: ${firstShort}`)

  const queues = exporters.map(() => [] as Buffer[])
  const sent = exporters.map(() => 0)
  let busiestPerSecond = 0
  let encodedLate = 0
  let nextSlot = 0
  let failed = 0
  let firstFailure: string | undefined
  const take = (slot: number) => {
    sent[slot]!++
    const body = queues[slot]!.shift()
    if (body) return body
    encodedLate++
    return exporters[slot]!.next(REMOTE_WRITE_PER_SERIES, REMOTE_WRITE_STEP_MS)
  }
  const onResponse = (status: number, body: string) => {
    if (status >= 200 && status < 300) return checkReply(body, samples)
    failed++
    firstFailure ??= `${status} ${body}`
  }

  return {
    pid,
    key: 'remote-write',
    name: `${dist}: remote_write, ${seriesPerRequest} series × ${REMOTE_WRITE_PER_SERIES} samples`,
    samples,
    options: {
      url,
      connections: REMOTE_WRITE_CONNECTIONS,
      setupClient: (client) => {
        const slot = nextSlot++ % REMOTE_WRITE_CONNECTIONS
        client.setRequests([
          {
            method: 'POST',
            headers,
            setupRequest: (request) => {
              request.body = take(slot)
              return request
            },
            onResponse
          }
        ])
      }
    },
    prepare(seconds) {
      nextSlot = 0
      sent.fill(0)
      // Twice the busiest connection's rate so far; bodies encoded during a run (fallback) are counted.
      const wanted = busiestPerSecond > 0 ? Math.ceil(2 * busiestPerSecond * seconds) + 20 : 200
      for (const [slot, queue] of queues.entries()) {
        while (queue.length < wanted) queue.push(exporters[slot]!.next(REMOTE_WRITE_PER_SERIES, REMOTE_WRITE_STEP_MS))
      }
    },
    finish(seconds) {
      busiestPerSecond = Math.max(busiestPerSecond, ...sent.map((n) => n / seconds))
    },
    async report(redis) {
      const lines = []
      if (failed > 0) lines.push(`${failed} non-2xx answers, the first: ${firstFailure}`)
      if (short > 0) lines.push(`${short} 200 answers did not accept all ${samples} samples, the first: ${firstShort}`)
      if (anomalies > 0) lines.push(`${anomalies} anomalies reported (the values are meant to be quiet: the runs should measure the normal path)`)
      if (encodedLate > 0) lines.push(`${encodedLate} bodies were encoded during runs (the queues ran short): the bench process competed for CPU`)
      const res = await fetch(`${base}/v1/services?limit=200`, { headers: { authorization: `Bearer ${key}` } })
      const { items } = (await res.json()) as { items: { id: string; name: string }[] }
      const service = items.find((s) => s.name === 'node')
      if (!service) return [...lines, 'no service `node` was created']
      const modelKeys = await scan(redis, `model:{${service.id}}:*`)
      const tagged = await scan(redis, `*{${service.id}}*`)
      const usage = async (keys: string[]) => (await Promise.all(keys.map((k) => redis.memory('USAGE', k, 'SAMPLES', 0)))).reduce<number>((sum, n) => sum + (n ?? 0), 0)
      const modelBytes = await usage(modelKeys)
      const taggedBytes = await usage(tagged)
      lines.push(
        `${exporters.length * seriesPerRequest} series sent (${exporters.length} instances × ${seriesPerRequest}); ${modelKeys.length} model keys, ` +
          `mean ${modelKeys.length ? Math.round(modelBytes / modelKeys.length) : '-'} bytes each (MEMORY USAGE); ` +
          `all ${tagged.length} keys of the service: ${modelKeys.length ? Math.round(taggedBytes / modelKeys.length) : '-'} bytes per model key`
      )
      return lines
    }
  }
}

/** Every key matching a pattern, with SCAN (on a cluster: on every master). */
async function scan(redis: Redis | Cluster, pattern: string) {
  const found = new Set<string>()
  for (const node of shardsOf(redis)) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      for (const key of keys) found.add(key)
      cursor = next
    } while (cursor !== '0')
  }
  return [...found]
}

const median = (values: number[]) => {
  const sorted = [...values].sort((x, y) => x - y)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The bench's own client: one server, or a cluster client once its slot map is loaded. */
async function connectRedis(url: string): Promise<Redis | Cluster> {
  const topology = parseRedisUrl(url)
  if (topology.kind === 'sentinel') throw new Error('BENCH_REDIS_URL: the bench takes redis:// or redis+cluster:// (give a Sentinel-managed master as redis://)')
  if (topology.kind === 'standalone') return new Redis(url)
  const cluster = new Cluster(topology.nodes, { redisOptions: { username: topology.username, password: topology.password, ...(topology.tls ? { tls: {} } : {}) } })
  await new Promise<void>((resolve, reject) => {
    cluster.once('ready', resolve)
    cluster.once('error', reject)
    setTimeout(() => reject(new Error(`${url}: the cluster was not ready within 10 s`)), 10_000).unref()
  })
  return cluster
}

/**
 * A one-master cluster (`redis-cli --cluster create` wants at least 3 masters, so the test harness cannot
 * make one): one cluster-enabled redis-server on a spare port that takes every slot itself.
 */
async function startOneMasterCluster() {
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { freePort } = await import('../test/servers.js')
  const dir = mkdtempSync(join(tmpdir(), 'autopilot-bench-cluster-'))
  let port = await freePort()
  while (port + 10_000 > 65_535) port = await freePort()
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes',
      '--cluster-config-file', join(dir, 'nodes.conf'), '--dir', dir,
      // Alone, the node does not know its own address and CLUSTER SLOTS would not name it.
      '--cluster-announce-ip', '127.0.0.1'],
    { stdio: 'ignore' }
  )
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 50 })
    admin.on('error', () => {})
    await Promise.race([
      admin.connect().catch(() => undefined),
      sleep(5000).then(() => {
        throw new Error(`redis-server on ${port} did not start`)
      })
    ])
    for (let i = 0; (await admin.ping().catch(() => null)) !== 'PONG'; i++) {
      if (i > 100) throw new Error(`redis-server on ${port} did not start`)
      await sleep(50)
    }
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383')
    for (let i = 0; !/cluster_state:ok/.test((await admin.call('CLUSTER', 'INFO')) as string); i++) {
      if (i > 100) throw new Error('the one-master cluster did not come up')
      await sleep(100)
    }
    admin.disconnect()
  } catch (err) {
    await stop()
    throw err
  }
  return { url: `redis+cluster://127.0.0.1:${port}`, stop }
}

async function main() {
  let stopCluster: (() => Promise<void>) | undefined
  if (CLUSTER_MASTERS !== undefined) {
    // Test helper, loaded only here: a private cluster of that many masters on spare loopback ports.
    const { startRedisCluster } = await import('../test/servers.js')
    const cluster = CLUSTER_MASTERS === 1 ? await startOneMasterCluster() : await startRedisCluster({ masters: CLUSTER_MASTERS, replicasPerMaster: 0 })
    stopCluster = cluster.stop
    REDIS_URL = cluster.url
    console.log(`Redis Cluster: ${CLUSTER_MASTERS} master(s), no replicas, ${REDIS_URL}`)
  }
  try {
    await bench()
  } finally {
    for (const child of children) child.kill('SIGTERM')
    await stopCluster?.()
  }
}

async function bench() {
  await runMigrations(DATABASE_URL)
  const redis = await connectRedis(REDIS_URL)
  const shards = shardsOf(redis)
  // A cluster has database 0 only: every master is flushed.
  for (const shard of shards) await shard.flushdb()

  start('dist/scripts/hello-server.js', { PORT: String(HELLO_PORT) })
  await waitFor(`http://127.0.0.1:${HELLO_PORT}/hello`)
  const scenarios: Scenario[] = []
  for (const [i, dist] of VARIANTS.entries()) scenarios.push(...(await startApi(dist, FIRST_API_PORT + i)))

  // Warm-up (not counted): every server's JIT sees its scenario's traffic before the first round.
  await run(`http://127.0.0.1:${HELLO_PORT}/hello`, { duration: WARMUP_SECONDS })
  for (const scenario of scenarios) {
    scenario.prepare?.(WARMUP_SECONDS)
    await run(scenario.options.url, { ...scenario.options, duration: WARMUP_SECONDS })
    scenario.finish?.(WARMUP_SECONDS)
  }

  const hello = { name: 'hello-world GET', samples: 0, results: [] as autocannon.Result[], ratios: [] as number[], apiCpu: [] as number[], redisCpu: [] as number[] }
  const measured = scenarios.map((s) => ({ ...s, results: [] as autocannon.Result[], ratios: [] as number[], apiCpu: [] as number[], redisCpu: [] as number[], shardCpu: [] as number[][] }))
  for (let round = 0; round < ROUNDS; round++) {
    const baseline = await run(`http://127.0.0.1:${HELLO_PORT}/hello`)
    hello.results.push(baseline)
    hello.ratios.push(1)
    for (const scenario of measured) {
      scenario.prepare?.(DURATION)
      const [api, servers] = [processCpuMicros(scenario.pid), await shardCpuMicros(shards)]
      const result = await run(scenario.options.url, scenario.options)
      scenario.apiCpu.push((processCpuMicros(scenario.pid) - api) / result.requests.total)
      // Per shard, µs per request; the Redis total is their sum.
      const perShard = (await shardCpuMicros(shards)).map((after, i) => (after - servers[i]!) / result.requests.total)
      scenario.shardCpu.push(perShard)
      scenario.redisCpu.push(perShard.reduce((sum, n) => sum + n, 0))
      scenario.finish?.(DURATION)
      scenario.results.push(result)
      scenario.ratios.push(result.requests.average / baseline.requests.average)
    }
  }

  const reports = []
  for (const scenario of measured) if (scenario.report) reports.push({ name: scenario.name, lines: await scenario.report(redis) })
  const perSample = (values: number[], samples: number) => (values.length && samples ? (median(values) / samples).toFixed(1) : '')
  const table = [hello, ...measured].map(({ name, samples, results, ratios, apiCpu, redisCpu }) => {
    const rate = median(results.map((r) => r.requests.average))
    return {
      name,
      'req/s': Math.round(rate),
      'samples/s': samples ? Math.round(rate * samples) : '',
      'p50 ms': median(results.map((r) => r.latency.p50)),
      'p99 ms': median(results.map((r) => r.latency.p99)),
      'vs hello req/s': median(ratios).toFixed(2),
      'samples/s vs hello req/s': samples ? (median(ratios) * samples).toFixed(2) : '',
      'rounds (req/s)': results.map((r) => Math.round(r.requests.average)).join(' '),
      'API CPU µs/req': apiCpu.length ? Math.round(median(apiCpu)) : '',
      'Redis CPU µs/req': redisCpu.length ? Math.round(median(redisCpu)) : '',
      'API CPU µs/sample': perSample(apiCpu, samples),
      'Redis CPU µs/sample': perSample(redisCpu, samples),
      'non-2xx': results.reduce((sum, r) => sum + r.non2xx, 0),
      errors: results.reduce((sum, r) => sum + r.errors + r.timeouts + r.non2xx, 0)
    }
  })
  console.log(`\n${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${DURATION}s, ${SERVICES} services × ${METRICS} metrics, medians\n`)
  console.table(table)
  console.log(
    '\n| run | req/s | samples/s | p50 ms | p99 ms | req/s vs hello-world (same round) | samples/s vs hello-world req/s | per round req/s | API CPU µs/req | Redis CPU µs/req | API CPU µs/sample | Redis CPU µs/sample | non-2xx | errors |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
  )
  for (const r of table) {
    console.log(
      `| ${r.name} | ${r['req/s']} | ${r['samples/s']} | ${r['p50 ms']} | ${r['p99 ms']} | ${r['vs hello req/s']} | ${r['samples/s vs hello req/s']} | ${r['rounds (req/s)']} | ${r['API CPU µs/req']} | ${r['Redis CPU µs/req']} | ${r['API CPU µs/sample']} | ${r['Redis CPU µs/sample']} | ${r['non-2xx']} | ${r.errors} |`
    )
  }
  for (const { name, lines } of reports) for (const line of lines) console.log(`\n${name}: ${line}`)
  if (redis instanceof Cluster) {
    const ports = shards.map((s) => s.options.port)
    console.log(`\nRedis CPU per shard (masters on ports ${ports.join(', ')}): µs per sample (share of the Redis CPU), median over rounds`)
    console.log(`\n| run | ${ports.map((p, i) => `shard ${i + 1} (:${p})`).join(' | ')} | total |\n|---|${ports.map(() => '---|').join('')}---|`)
    for (const { name, samples, shardCpu, redisCpu } of measured) {
      const per = ports.map((_, i) => median(shardCpu.map((round) => round[i]!)) / samples)
      const total = per.reduce((sum, n) => sum + n, 0)
      console.log(`| ${name} | ${per.map((n) => `${n.toFixed(2)} (${total ? Math.round((100 * n) / total) : 0}%)`).join(' | ')} | ${(median(redisCpu) / samples).toFixed(2)} |`)
    }
    const keys = await Promise.all(shards.map((s) => s.dbsize()))
    console.log(`\nkeys per shard: ${keys.join(' / ')}`)
  }
  redis.disconnect()
}

await main()
