import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { parseRedisUrl } from '../src/redis/client.js'
import { ensureCommand } from './tools.js'

const run = promisify(execFile)
const env = { ...process.env, JWT_SECRET: 'compose-validation-secret-0123456789abcdef' }

type Profile = 'cluster' | 'sentinel'

interface Service {
  command?: string[]
  environment?: Record<string, string>
  depends_on?: Record<string, { condition: string }>
  networks?: Record<string, { ipv4_address?: string } | null>
  volumes?: (string | { target: string })[]
  healthcheck?: unknown
  profiles?: string[]
  restart?: string
  [key: string]: unknown
}

const profileArgs = (profile?: Profile) => (profile ? ['--profile', profile] : [])

async function composeConfig(profile?: Profile): Promise<{ services: Record<string, Service> }> {
  const { stdout } = await run('docker-compose', [...profileArgs(profile), 'config'], { env })
  return parse(stdout) as { services: Record<string, Service> }
}

/**
 * The services a plain `up` starts (no profile), or those a profile adds. docker-compose v1 prints every
 * service whatever the active profiles, v2 only the active ones: select by `profiles` for either.
 */
function servicesOf(config: { services: Record<string, Service> }, profile?: Profile): Record<string, Service> {
  return Object.fromEntries(
    Object.entries(config.services).filter(([, service]) => (profile ? (service.profiles ?? []).includes(profile) : service.profiles === undefined))
  )
}

const commandOf = (service: Service | undefined) => (service?.command ?? []).join(' ').trim()
const mountTargets = (service: Service) => (service.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[1] : v.target))

describe('docker-compose.yml', () => {
  it.each([['default stack', undefined], ['profile cluster', 'cluster'], ['profile sentinel', 'sentinel']] as [string, Profile | undefined][])('is valid for docker-compose (%s)', async (_label, profile) => {
    await ensureCommand('docker-compose', 'docker-compose')
    await run('docker-compose', [...profileArgs(profile), 'config', '-q'], { env })
  }, 300_000)

  it('describes the production-like stack: Postgres, state Redis that evicts, queue Redis that never does, with AOF', async () => {
    const config = { services: servicesOf(await composeConfig()) }
    expect(Object.keys(config.services).sort()).toEqual(['api', 'migrate', 'postgres', 'redis-queue', 'redis-state', 'worker'])
    expect(config.services['redis-state']!.command!.join(' ')).toContain('--maxmemory-policy allkeys-lru')
    const queue = config.services['redis-queue']!.command!.join(' ')
    expect(queue).toContain('--maxmemory-policy noeviction')
    expect(queue).toContain('--appendonly yes')
    for (const name of ['postgres', 'redis-state', 'redis-queue', 'api', 'worker']) {
      expect(config.services[name]!.healthcheck, name).toBeDefined()
    }
    expect(config.services.api!.depends_on!.migrate!.condition).toBe('service_completed_successfully')
    expect(config.services.worker!.environment!.QUEUE_REDIS_URL).toBe('redis://redis-queue:6379/0')
    expect(config.services.api!.environment!.REDIS_URL).toBe('redis://redis-state:6379/0')
  })

  it.each(['cluster', 'sentinel'] as Profile[])('profile %s leaves the default stack as it is and depends on nothing of it but migrate', async (profile) => {
    const plain = servicesOf(await composeConfig())
    const withProfile = await composeConfig(profile)
    expect(servicesOf(withProfile)).toEqual(plain)
    const added = servicesOf(withProfile, profile)
    for (const [name, service] of Object.entries(added)) {
      expect(plain[name], name).toBeUndefined()
      for (const dependency of Object.keys(service.depends_on ?? {})) {
        expect(dependency === 'migrate' || dependency in added, `${name} depends on ${dependency}`).toBe(true)
      }
    }
  })

  it('profile cluster: 6 cluster nodes (noeviction + AOF), a one-shot init creating 3 masters + 3 replicas, API and worker on redis+cluster URLs', async () => {
    const services = servicesOf(await composeConfig('cluster'), 'cluster')
    const nodes = Object.entries(services).filter(([, service]) => commandOf(service).includes('--cluster-enabled yes'))
    expect(nodes).toHaveLength(6)
    const addresses: string[] = []
    for (const [name, node] of nodes) {
      const command = commandOf(node)
      expect(command, name).toMatch(/^redis-server /)
      expect(command, name).toMatch(/--cluster-config-file \/data\/\S+/)
      expect(command, name).toContain(`--cluster-announce-hostname ${name} `)
      expect(command, name).toContain('--cluster-preferred-endpoint-type hostname')
      expect(command, name).toContain('--maxmemory-policy noeviction')
      expect(command, name).toContain('--appendonly yes')
      expect(node.healthcheck, name).toBeDefined()
      expect(mountTargets(node), name).toContain('/data')
      const address = node.networks?.['redis-cluster']?.ipv4_address
      expect(address, name).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
      addresses.push(address!)
    }
    expect(new Set(addresses).size).toBe(6)

    const init = services['redis-cluster-init']
    expect(init).toBeDefined()
    expect(init!.restart).toBe('no')
    for (const [name] of nodes) expect(init!.depends_on?.[name]?.condition, name).toBe('service_healthy')
    const create = /redis-cli --cluster create ((?:\S+:6379 )+)--cluster-replicas 1 --cluster-yes/.exec(commandOf(init))
    expect(create).not.toBeNull()
    expect(create![1]!.trim().split(' ').sort()).toEqual(addresses.map((a) => `${a}:6379`).sort())

    const nodeNames = nodes.map(([name]) => name).sort()
    for (const name of ['api-cluster', 'worker-cluster']) {
      const app = services[name]
      expect(app, name).toBeDefined()
      expect(commandOf(app), name).toBe(name === 'api-cluster' ? 'node dist/src/server.js' : 'node dist/src/worker.js')
      for (const variable of ['REDIS_URL', 'QUEUE_REDIS_URL']) {
        const url = app!.environment![variable]!
        expect(url, `${name} ${variable}`).toMatch(/^redis\+cluster:\/\//)
        const topology = parseRedisUrl(url)
        expect(topology.kind).toBe('cluster')
        if (topology.kind !== 'cluster') continue
        expect(topology.nodes.map((n) => n.host).sort()).toEqual(nodeNames)
        expect(topology.nodes.every((n) => n.port === 6379)).toBe(true)
      }
      expect(Object.keys(app!.networks ?? {}).sort(), name).toEqual(['default', 'redis-cluster'])
      expect(app!.depends_on?.['redis-cluster-init']?.condition, name).toBe('service_completed_successfully')
      expect(app!.depends_on?.migrate?.condition, name).toBe('service_completed_successfully')
      expect(app!.healthcheck, name).toBeDefined()
    }
  })

  it('profile sentinel: a master, 2 replicas, 3 sentinels monitoring `autopilot` with quorum 2, API and worker on a redis+sentinel URL', async () => {
    const services = servicesOf(await composeConfig('sentinel'), 'sentinel')
    const sentinels = Object.entries(services).filter(([, service]) => / --sentinel$/.test(commandOf(service)))
    const data = Object.entries(services).filter(([, service]) => commandOf(service).includes('maxmemory-policy noeviction'))
    const replicas = data.filter(([, service]) => commandOf(service).includes('replicaof '))
    const masters = data.filter(([, service]) => !commandOf(service).includes('replicaof '))
    expect(masters.map(([name]) => name)).toEqual(['redis-master'])
    expect(replicas).toHaveLength(2)
    for (const [name, node] of data) {
      expect(commandOf(node), name).toContain('appendonly yes')
      expect(commandOf(node), name).toContain(`replica-announce-ip`)
      expect(node.command, name).toContain(name)
      expect(node.healthcheck, name).toBeDefined()
      expect(mountTargets(node), name).toContain('/data')
    }
    for (const [name, replica] of replicas) expect(replica.command, name).toContain('replicaof redis-master 6379')

    expect(sentinels).toHaveLength(3)
    for (const [name, sentinel] of sentinels) {
      const command = commandOf(sentinel)
      const monitor = /sentinel monitor (\S+) (\S+) (\d+) (\d+)/.exec(command)
      expect(monitor?.slice(1), name).toEqual(['autopilot', 'redis-master', '6379', '2'])
      expect(command, name).toContain('sentinel resolve-hostnames yes')
      // the config file a sentinel rewrites lives in its own volume
      expect(command, name).toMatch(/redis-server \/data\/sentinel\.conf --sentinel$/)
      expect(mountTargets(sentinel), name).toContain('/data')
      expect(sentinel.healthcheck, name).toBeDefined()
    }

    const sentinelNames = sentinels.map(([name]) => name).sort()
    for (const name of ['api-sentinel', 'worker-sentinel']) {
      const app = services[name]
      expect(app, name).toBeDefined()
      for (const variable of ['REDIS_URL', 'QUEUE_REDIS_URL']) {
        const url = app!.environment![variable]!
        expect(url, `${name} ${variable}`).toMatch(/^redis\+sentinel:\/\//)
        const topology = parseRedisUrl(url)
        expect(topology.kind).toBe('sentinel')
        if (topology.kind !== 'sentinel') continue
        expect(topology.name).toBe('autopilot')
        expect(topology.sentinels.map((s) => `${s.host}:${s.port}`).sort()).toEqual(sentinelNames.map((s) => `${s}:26379`))
      }
      for (const sentinel of sentinelNames) expect(app!.depends_on?.[sentinel]?.condition, name).toBe('service_healthy')
      expect(app!.depends_on?.migrate?.condition, name).toBe('service_completed_successfully')
      expect(app!.healthcheck, name).toBeDefined()
    }
  })
})
