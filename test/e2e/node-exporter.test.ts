import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWorker } from '../../src/worker.js'
import { apiKey, call, signup, useApp, type Org } from '../helpers.js'
import { freePort } from '../servers.js'
import { ensureCommand } from '../tools.js'

/**
 * The real programs on this machine: Debian's Prometheus scrapes Debian's node_exporter and itself every
 * 2 s and remote-writes everything (about a thousand series, with metadata) to the API with the README's
 * block and an agent key on the free plan. A healthy idle host must open no incident; both cores kept busy
 * must open one on `node` naming a CPU metric; when the load stops it must resolve after its quiet period.
 *
 * The only settings changed are the warm-up span (minSpanSeconds 60 instead of 1800: 30 samples over a
 * minute instead of half an hour) and the quiet period (60 s), on the two services, created beforehand.
 */
const ctx = useApp({ SWEEP_INTERVAL_MS: '1000' })
const children: ChildProcess[] = []
let dir: string
let org: Org
let key: string
let stopWorker: (() => Promise<void>) | undefined
let firstSampleAt = 0
const SCRAPE_SECONDS = 2
const DETECTION = { minSpanSeconds: 60, quietPeriodSeconds: 60 }

function launch(command: string, args: string[]) {
  const child = spawn(command, args, { stdio: 'ignore' })
  children.push(child)
  return child
}

interface Incident {
  id: string
  service: string
  status: string
  severity: string
  source: string
  metrics: string[]
  series: { metric: string; labels: Record<string, string> }[]
  openedAt: string
}
const incidents = async (): Promise<Incident[]> =>
  (await call(ctx.app, key, { method: 'GET', url: '/v1/incidents?limit=200' })).json().items.filter((i: Incident) => i.source === 'detector')
const servicesByName = async (): Promise<Map<string, string>> =>
  new Map((await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items.map((s: { name: string; id: string }) => [s.name, s.id]))

/** What the detector saw, for a failure's message. */
async function anomalies(): Promise<string> {
  const out: string[] = []
  for (const [name, id] of await servicesByName()) {
    const items = (await call(ctx.app, key, { method: 'GET', url: `/v1/services/${id}/anomalies?limit=50` })).json().items ?? []
    for (const a of items) out.push(`${name} ${a.metric}${JSON.stringify(a.labels)} ${a.kind} z=${Number(a.zScore).toFixed(1)} value=${a.value} expected=${a.expected}`)
  }
  return out.join('\n') || 'no anomalies'
}

beforeAll(async () => {
  await ensureCommand('prometheus', 'prometheus')
  await ensureCommand('prometheus-node-exporter', 'prometheus-node-exporter')
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  const api = `http://127.0.0.1:${(ctx.app.server.address() as { port: number }).port}`
  org = await signup(ctx.app)
  key = (await apiKey(ctx.app, org)).key
  for (const name of ['node', 'prometheus']) {
    const created = await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name, detection: DETECTION } })
    expect(created.statusCode, created.body).toBe(201)
  }
  stopWorker = await startWorker(ctx.config)
  dir = await mkdtemp(join(tmpdir(), 'autopilot-node-'))
  const [exporterPort, promPort] = [await freePort(), await freePort()]
  await writeFile(
    join(dir, 'prometheus.yml'),
    `global:
  scrape_interval: ${SCRAPE_SECONDS}s
  evaluation_interval: ${SCRAPE_SECONDS}s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:${exporterPort}']
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:${promPort}']
remote_write:
  - url: ${api}/v1/integrations/prometheus/write
    authorization:
      credentials: ${key}
    queue_config:
      max_samples_per_send: 1000
      batch_send_deadline: 1s
`
  )
  launch('prometheus-node-exporter', [`--web.listen-address=127.0.0.1:${exporterPort}`])
  launch('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${promPort}`
  ])
}, 120_000)

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await stopWorker?.()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('Prometheus + node_exporter on this host', () => {
  it('a healthy idle host: every series learns, and for 2 minutes nothing opens an incident', async () => {
    const node = (await servicesByName()).get('node')!
    type Baseline = { kind: string; labels: Record<string, string>; metric: string; state: string }
    // Every page of them.
    const baselines = async () => {
      const all: Baseline[] = []
      let cursor: string | null = null
      do {
        const url = `/v1/services/${node}/baselines?limit=1000${cursor ? `&cursor=${cursor}` : ''}`
        const page: { items: Baseline[]; nextCursor: string | null } = (await call(ctx.app, key, { method: 'GET', url })).json()
        all.push(...page.items)
        cursor = page.nextCursor
      } while (cursor !== null)
      return all
    }
    await expect.poll(async () => (await baselines()).length, { timeout: 30_000, interval: 1000 }).toBeGreaterThan(0)
    firstSampleAt = Date.now()
    // Each label set is its own series: node_exporter's CPU counters, per cpu and mode, scored on their rate.
    await expect
      .poll(async () => (await baselines()).filter((b) => b.metric === 'node_cpu_seconds_total' && b.kind === 'counter').length, { timeout: 30_000, interval: 1000 })
      .toBeGreaterThanOrEqual(8)
    // Scoring starts after the warm-up (30 samples over a minute); then the host is watched for 2 minutes.
    await expect.poll(async () => (await baselines()).some((b) => b.state === 'ready'), { timeout: 120_000, interval: 2000 }).toBe(true)
    const watchUntil = Math.max(Date.now() + 120_000, firstSampleAt + 150_000)
    while (Date.now() < watchUntil) {
      const opened = await incidents()
      if (opened.length > 0) expect.fail(`a healthy host opened ${JSON.stringify(opened, null, 1)}\n${await anomalies()}`)
      await sleep(2000)
    }
    const all = (await baselines()).length
    expect(all).toBeGreaterThan(200)
    console.info(`healthy host: ${all} series of node learned, no incident; anomalies seen:\n${await anomalies()}`)
  }, 400_000)

  it('both cores busy for a minute: an incident opens on node naming a CPU metric within 90 s; it resolves after the load stops', async () => {
    // Two spinning threads at the lowest priority: both cores are busy, the API and Prometheus still run.
    const spinner = launch('nice', ['-n', '19', process.execPath, '-e', "const { Worker } = require('node:worker_threads'); for (let i = 0; i < 2; i++) new Worker('for (;;) {}', { eval: true })"])
    const loadStarted = Date.now()
    let incident: Incident | undefined
    try {
      await expect
        .poll(async () => (incident = (await incidents()).find((i) => i.service === 'node' && i.metrics.some((m) => m.includes('cpu')))), {
          timeout: 90_000,
          interval: 1000
        })
        .toBeDefined()
      console.info(`loaded host: incident after ${((Date.now() - loadStarted) / 1000).toFixed(0)} s: ${incident!.metrics.join(', ')}; series ${JSON.stringify(incident!.series.slice(0, 5))}`)
      expect(incident!.status).toBe('open')
      const remaining = loadStarted + 60_000 - Date.now()
      if (remaining > 0) await sleep(remaining)
    } finally {
      spinner.kill('SIGKILL')
    }
    const loadStopped = Date.now()
    const status = async () => (await call(ctx.app, key, { method: 'GET', url: `/v1/incidents/${incident!.id}` })).json().status
    await expect.poll(status, { timeout: 300_000, interval: 2000 }).toBe('resolved')
    console.info(`incident resolved ${((Date.now() - loadStopped) / 1000).toFixed(0)} s after the load stopped`)
  }, 420_000)
})
