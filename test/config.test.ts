import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.js'

const run = promisify(execFile)

describe('config', () => {
  it('generates a JWT secret only in development', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).jwt.secret.length).toBeGreaterThanOrEqual(32)
  })

  it('applies defaults and derives QUEUE_REDIS_URL from REDIS_URL', () => {
    const config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(32), REDIS_URL: 'redis://10.0.0.1:6380/2', WEBHOOK_ALLOWED_HOSTS: 'Hooks.example.com, 127.0.0.1 ,' })
    expect(config.port).toBe(3000)
    expect(config.queueRedisUrl).toBe('redis://10.0.0.1:6380/2')
    expect(config.webhookAllowedHosts).toEqual(['hooks.example.com', '127.0.0.1'])
  })

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://localhost/x' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ QUEUE_REDIS_URL: 'http://x' }, 'QUEUE_REDIS_URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET'],
    [{ NODE_ENV: 'production' }, 'JWT_SECRET'],
    [{ NODE_ENV: 'test' }, 'JWT_SECRET']
  ])('%j is refused naming %s', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(ConfigError)
    expect(() => loadConfig(env)).toThrow(variable)
  })

  it('a bad variable stops the API process with a message naming it', async () => {
    const failure = await run('npx', ['tsx', 'src/server.ts'], { env: { ...process.env, PORT: 'not-a-port' } }).catch((err) => err)
    expect(failure.code).toBe(1)
    expect(failure.stderr).toContain('PORT')
  })
})
