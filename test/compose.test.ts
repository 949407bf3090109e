import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { ensureCommand } from './tools.js'

const run = promisify(execFile)
const env = { ...process.env, JWT_SECRET: 'compose-validation-secret-0123456789abcdef' }

describe('docker-compose.yml', () => {
  it('is valid for docker-compose', async () => {
    await ensureCommand('docker-compose', 'docker-compose')
    await run('docker-compose', ['config', '-q'], { env })
  }, 300_000)

  it('describes the production-like stack: Postgres, state Redis that evicts, queue Redis that never does, with AOF', async () => {
    const { stdout } = await run('docker-compose', ['config'], { env })
    const config = parse(stdout)
    expect(Object.keys(config.services).sort()).toEqual(['api', 'migrate', 'postgres', 'redis-queue', 'redis-state', 'worker'])
    expect(config.services['redis-state'].command.join(' ')).toContain('--maxmemory-policy allkeys-lru')
    const queue = config.services['redis-queue'].command.join(' ')
    expect(queue).toContain('--maxmemory-policy noeviction')
    expect(queue).toContain('--appendonly yes')
    for (const name of ['postgres', 'redis-state', 'redis-queue', 'api', 'worker']) {
      expect(config.services[name].healthcheck, name).toBeDefined()
    }
    expect(config.services.api.depends_on.migrate.condition).toBe('service_completed_successfully')
    expect(config.services.worker.environment.QUEUE_REDIS_URL).toBe('redis://redis-queue:6379/0')
  })
})
