import { spawn, type ChildProcess } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

/** A free loopback port (bound, then released). */

/**
 * One short exchange with a Redis node on loopback: connects (no retries, no offline queue), runs `use`,
 * disconnects. Rejects when the node does not answer.
 */
export async function onNode<T>(port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    return await use(client)
  } finally {
    client.disconnect()
  }
}
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A private redis-server on a spare loopback port, for tests that flush, stop or kill it. */
export async function startRedis() {
  const port = await freePort()
  let child: ChildProcess = launch()
  function launch() {
    return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  }
  async function kill() {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
  const url = `redis://127.0.0.1:${port}/0`
  async function ready() {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    for (let i = 0; i < 100; i++) {
      try {
        await probe.connect()
        await probe.ping()
        probe.disconnect()
        return
      } catch {
        await sleep(50)
      }
    }
    throw new Error(`redis-server on ${port} did not start`)
  }
  await ready()
  return {
    url,
    port,
    async flushAll() {
      const client = new Redis(url)
      await client.flushall()
      client.disconnect()
    },
    /** Kills it (if running) and starts it again, empty. */
    async restart() {
      await kill()
      child = launch()
      await ready()
    },
    stop: kill,
    /** SIGSTOP freezes it (connections stay open, nothing answers); SIGCONT thaws it. */
    signal(signal: NodeJS.Signals) {
      child.kill(signal)
    }
  }
}

const PG_BIN = '/usr/lib/postgresql/15/bin'

/** Runs a Postgres binary as the postgres user (the server refuses to run as root). */
function asPostgres(args: string[]) {
  const command = process.getuid?.() === 0 ? 'runuser' : args[0]!
  const argv = process.getuid?.() === 0 ? ['-u', 'postgres', '--', ...args] : args.slice(1)
  return new Promise<void>((resolve, reject) => {
    const child = spawn(command, argv, { stdio: 'ignore' })
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(' ')} exited ${code}`))))
  })
}

/** A private Postgres cluster (initdb) on a spare loopback port, for tests that stop and start it. */
export async function startPostgres() {
  const port = await freePort()
  const dir = `/tmp/autopilot-pg-${port}-${Date.now()}`
  await asPostgres(['mkdir', '-p', dir])
  await asPostgres([`${PG_BIN}/initdb`, '-D', dir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8'])
  const start = () =>
    asPostgres([`${PG_BIN}/pg_ctl`, '-D', dir, '-w', '-t', '30', '-l', `${dir}/log`, '-o', `-p ${port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off`, 'start'])
  const stop = () => asPostgres([`${PG_BIN}/pg_ctl`, '-D', dir, '-w', '-m', 'immediate', 'stop'])
  await start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/autopilot`,
    start,
    stop,
    async destroy() {
      await stop().catch(() => {})
      await asPostgres(['rm', '-rf', dir])
    }
  }
}

/**
 * A TCP proxy in front of a loopback port. `blackhole()` silently stops forwarding: connections stay
 * open and nothing answers, as when a network path dies without a reset. `restore()` drops those
 * connections (their byte streams are broken) and forwards again for new ones.
 */
export async function startTcpProxy(targetPort: number) {
  let blackholed = false
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1')
    const pipe = (from: Socket, to: Socket) => {
      sockets.add(from)
      from.on('data', (chunk) => {
        if (!blackholed) to.write(chunk)
      })
      from.on('error', () => from.destroy())
      from.on('close', () => {
        sockets.delete(from)
        to.destroy()
      })
    }
    pipe(client, upstream)
    pipe(upstream, client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const dropAll = () => sockets.forEach((socket) => socket.destroy())
  return {
    port: (server.address() as { port: number }).port,
    blackhole() {
      blackholed = true
    },
    restore() {
      dropAll()
      blackholed = false
    },
    async close() {
      dropAll()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}

/**
 * A private Redis Cluster on spare loopback ports: `masters` masters with `replicasPerMaster` replicas each
 * (Debian's redis-server with --cluster-enabled, joined by `redis-cli --cluster create`), in its own
 * temporary directory. `url` is a redis+cluster:// URL naming every node.
 */
export async function startRedisCluster({ masters = 3, replicasPerMaster = 1 } = {}) {
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = mkdtempSync(join(tmpdir(), 'autopilot-cluster-'))
  const count = masters * (1 + replicasPerMaster)
  const ports: number[] = []
  while (ports.length < count) {
    const port = await freePort()
    // The cluster bus listens on port + 10000: both must be free.
    if (port + 10_000 <= 65_535 && !ports.includes(port)) ports.push(port)
  }
  const children = new Map<number, ChildProcess>()
  const launch = (port: number) => {
    const child = spawn(
      'redis-server',
      [
        '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
        '--dir', dir
      ],
      { stdio: 'ignore' }
    )
    children.set(port, child)
  }
  ports.forEach(launch)
  const ping = (port: number) => onNode(port, (client) => client.ping())
  for (const port of ports) {
    for (let i = 0; ; i++) {
      if (await ping(port).catch(() => null)) break
      if (i > 100) throw new Error(`redis-server on ${port} did not start`)
      await sleep(50)
    }
  }
  await new Promise<void>((resolve, reject) => {
    const create = spawn('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], {
      stdio: 'ignore'
    })
    create.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-cli --cluster create exited ${code}`))))
  })
  /** CLUSTER INFO of a node, as a map. */
  const info = (port: number) =>
    onNode(port, async (client) => {
      const text = (await client.cluster('INFO')) as string
      return new Map(text.split(/\r?\n/).filter(Boolean).map((line) => line.split(':') as [string, string]))
    })
  /** CLUSTER NODES of a node: id, port, flags, master id, link state, slot ranges. */
  const nodesOf = (port: number) =>
    onNode(port, async (client) => {
      const text = (await client.cluster('NODES')) as string
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [id, address, flags, master, , , , link, ...slots] = line.split(' ') as string[]
          return { id: id!, port: Number(address!.split('@')[0]!.split(':')[1]), flags: flags!.split(','), master: master!, link: link!, slots }
        })
    })
  /**
   * Every live node sees the cluster ok, every slot served, and (with replicas) every master that serves
   * slots has its replicas attached with their replication link up: only then can a killed master fail over.
   */
  const settled = async (live: number[]) => {
    for (let i = 0; i < 300; i++) {
      const states = await Promise.all(live.map((port) => info(port).catch(() => null)))
      const ok = states.every((state) => state?.get('cluster_state') === 'ok' && state.get('cluster_slots_ok') === '16384')
      if (ok && (replicasPerMaster === 0 || (await replicasAttached(live)))) return
      await sleep(100)
    }
    throw new Error('the cluster did not settle')
  }
  const replicasAttached = async (live: number[]) => {
    const nodes = await nodesOf(live[0]!).catch(() => [])
    const serving = nodes.filter((node) => node.flags.includes('master') && !node.flags.includes('fail') && node.slots.length > 0)
    if (serving.length !== masters) return false
    // Every live node that serves no slots is a replica attached to a serving master, its link up (after a
    // failover the promoted master has no replica left, and that is settled too).
    const replicas = nodes.filter((node) => serving.some((master) => node.master === master.id) && !node.flags.includes('fail') && live.includes(node.port))
    if (replicas.length !== live.length - masters) return false
    for (const replica of replicas) {
      const linked = await onNode(replica.port, async (client) => /master_link_status:up/.test(await client.info('replication'))).catch(() => false)
      if (!linked) return false
    }
    return true
  }
  await settled(ports)
  /** The ports of the masters serving slots now. */
  const mastersNow = async () => {
    const live = ports.find((p) => children.get(p)?.exitCode === null && children.get(p)?.signalCode === null)!
    return (await nodesOf(live))
      .filter((node) => node.flags.includes('master') && !node.flags.includes('fail') && node.slots.length > 0)
      .map((node) => node.port)
  }
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    ports,
    mastersNow,
    /** Waits until every live node sees the cluster ok (after a failover). */
    settled: () => settled(ports.filter((p) => children.get(p)?.exitCode === null && children.get(p)?.signalCode === null)),
    /** kill -9 of one node. */
    async kill(port: number) {
      const child = children.get(port)!
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    },
    /** Every live master's keys flushed (tests isolate by organization; this is for a fresh start). */
    async flushAll() {
      for (const port of await mastersNow()) {
        const client = new Redis({ port, host: '127.0.0.1' })
        await client.flushall().catch(() => undefined)
        client.disconnect()
      }
    },
    async stop() {
      await Promise.all(
        [...children.values()].map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) return
          const exited = new Promise((resolve) => child.once('exit', resolve))
          child.kill('SIGKILL')
          await exited
        })
      )
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * A private Sentinel deployment on spare loopback ports: one master, `replicas` replicas and `sentinels`
 * sentinels (Debian's redis-server, the sentinels with --sentinel) watching the master group `name`, quorum
 * 2, a master declared down after 1 s. `url` is a redis+sentinel:// URL naming every sentinel.
 */
export async function startRedisSentinel({ replicas = 2, sentinels = 3, name = 'autopilot' } = {}) {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = mkdtempSync(join(tmpdir(), 'autopilot-sentinel-'))
  const dataPorts: number[] = []
  const sentinelPorts: number[] = []
  while (dataPorts.length < 1 + replicas) dataPorts.push(await freePort())
  while (sentinelPorts.length < sentinels) sentinelPorts.push(await freePort())
  const children = new Map<number, ChildProcess>()
  const [masterPort] = dataPorts as [number]
  dataPorts.forEach((port, i) => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
    if (i > 0) args.push('--replicaof', '127.0.0.1', String(masterPort))
    children.set(port, spawn('redis-server', args, { stdio: 'ignore' }))
  })
  for (const port of sentinelPorts) {
    const file = join(dir, `sentinel-${port}.conf`)
    writeFileSync(
      file,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`
      ].join('\n')
    )
    children.set(port, spawn('redis-server', [file, '--sentinel'], { stdio: 'ignore' }))
  }
  const probe = (port: number) => {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    return client
  }
  /** The master the sentinels agree on now (the first sentinel that answers). */
  const masterNow = async (): Promise<number | undefined> => {
    for (const port of sentinelPorts) {
      const client = probe(port)
      try {
        await client.connect()
        const [, masterPortNow] = (await client.call('SENTINEL', 'get-master-addr-by-name', name)) as [string, string]
        return Number(masterPortNow)
      } catch {
        // the next sentinel
      } finally {
        client.disconnect()
      }
    }
    return undefined
  }
  const live = (port: number) => children.get(port)?.exitCode === null && children.get(port)?.signalCode === null
  /** Every live replica linked to the current master, and the sentinels knowing them all. */
  const settled = async () => {
    for (let i = 0; i < 300; i++) {
      const master = await masterNow()
      if (master !== undefined && live(master)) {
        const client = probe(master)
        try {
          await client.connect()
          const info = await client.info('replication')
          const linked = (info.match(/^slave\d+:.*state=online/gm) ?? []).length
          if (/role:master/.test(info) && linked >= dataPorts.filter((p) => p !== master && live(p)).length) return master
        } catch {
          // not yet
        } finally {
          client.disconnect()
        }
      }
      await sleep(100)
    }
    throw new Error('the sentinel deployment did not settle')
  }
  await settled()
  return {
    url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${name}`,
    name,
    dataPorts,
    sentinelPorts,
    masterNow,
    settled,
    async kill(port: number) {
      const child = children.get(port)!
      if (!live(port)) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    },
    async stop() {
      await Promise.all(
        [...children.keys()].map(async (port) => {
          const child = children.get(port)!
          if (!live(port)) return
          const exited = new Promise((resolve) => child.once('exit', resolve))
          child.kill('SIGKILL')
          await exited
        })
      )
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
