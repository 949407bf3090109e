import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiKey, call, signup, useApp, type Org } from '../helpers.js'
import { freePort } from '../servers.js'
import { ensureCommand } from '../tools.js'

/**
 * The real programs from Debian: a Prometheus that scrapes a small exporter served here, remote-writes
 * to the API with an API key, evaluates an alert rule and sends it to a real Alertmanager, which calls the
 * API's webhook. Fast intervals keep it within a minute.
 */
const ctx = useApp()
const children: ChildProcess[] = []
let dir: string
let org: Org
let key: string
let api: string
let flag = 0
let tick = 0
let exporter: ReturnType<typeof createServer> | undefined

function launch(command: string, args: string[]) {
  const child = spawn(command, args, { stdio: 'ignore' })
  children.push(child)
  return child
}

beforeAll(async () => {
  await ensureCommand('prometheus', 'prometheus')
  await ensureCommand('prometheus-alertmanager', 'prometheus-alertmanager')
  await ctx.app.listen({ port: 0, host: '127.0.0.1' })
  api = `http://127.0.0.1:${(ctx.app.server.address() as { port: number }).port}`
  org = await signup(ctx.app)
  key = (await apiKey(ctx.app, org)).key
  dir = await mkdtemp(join(tmpdir(), 'autopilot-e2e-'))

  exporter = createServer((_req, res) => {
    tick++
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
    res.end(`# TYPE e2e_latency_ms gauge\ne2e_latency_ms ${100 + (tick % 5)}\n# TYPE e2e_flag gauge\ne2e_flag ${flag}\n`)
  })
  await new Promise<void>((resolve) => exporter!.listen(0, '127.0.0.1', resolve))
  const exporterPort = (exporter.address() as { port: number }).port

  const [promPort, amPort] = [await freePort(), await freePort()]
  await writeFile(
    join(dir, 'alertmanager.yml'),
    `route:
  receiver: autopilot
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: autopilot
    webhook_configs:
      - url: ${api}/v1/integrations/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: ${key}
`
  )
  await writeFile(
    join(dir, 'rules.yml'),
    `groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: E2EFlagRaised
        expr: e2e_flag == 1
        labels:
          severity: critical
        annotations:
          summary: the e2e flag is raised
`
  )
  await writeFile(
    join(dir, 'prometheus.yml'),
    `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: e2e-exporter
    static_configs:
      - targets: ['127.0.0.1:${exporterPort}']
rule_files: ['${join(dir, 'rules.yml')}']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:${amPort}']
remote_write:
  - url: ${api}/v1/integrations/prometheus/write
    authorization:
      credentials: ${key}
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 500
`
  )
  launch('prometheus-alertmanager', [
    `--config.file=${join(dir, 'alertmanager.yml')}`,
    `--storage.path=${join(dir, 'am')}`,
    `--web.listen-address=127.0.0.1:${amPort}`,
    '--cluster.listen-address='
  ])
  launch('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${promPort}`
  ])
}, 300_000)

afterAll(async () => {
  for (const child of children) child.kill()
  exporter?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('real Prometheus and Alertmanager', () => {
  it('remote_write creates the service and its baselines reach ready', async () => {
    const service = async () =>
      (await call(ctx.app, key, { method: 'GET', url: '/v1/services' })).json().items.find((s: { name: string }) => s.name === 'e2e-exporter')
    await expect.poll(service, { timeout: 30_000, interval: 500 }).toBeDefined()
    const { id } = await service()
    // Samples carry Prometheus' real scrape times, a second apart: the default warm-up span (minSpanSeconds
    // 1800) would take half an hour, so this service needs 20 s of them (and the default 30 samples).
    const patched = await call(ctx.app, org.token, { method: 'PATCH', url: `/v1/services/${id}`, payload: { detection: { minSpanSeconds: 20 } } })
    expect(patched.statusCode, patched.body).toBe(200)
    const latency = async () =>
      (await call(ctx.app, key, { method: 'GET', url: `/v1/services/${id}/baselines` })).json().items.find((b: { metric: string }) => b.metric === 'e2e_latency_ms')
    await expect.poll(async () => (await latency())?.state, { timeout: 50_000, interval: 500 }).toBe('ready')
    expect((await latency()).mean).toBeGreaterThan(99)
  }, 90_000)

  it('a firing rule opens an alertmanager incident; clearing it resolves the incident', async () => {
    flag = 1
    const incident = async () =>
      (await call(ctx.app, key, { method: 'GET', url: '/v1/incidents' })).json().items.find((i: { source: string }) => i.source === 'alertmanager')
    await expect.poll(incident, { timeout: 40_000, interval: 500 }).toBeDefined()
    expect(await incident()).toMatchObject({ status: 'open', severity: 'critical', title: 'the e2e flag is raised', service: 'e2e-exporter' })
    flag = 0
    await expect.poll(async () => (await incident())?.status, { timeout: 40_000, interval: 500 }).toBe('resolved')
  }, 90_000)
})
