import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.js'
import { parseRedisUrl } from '../src/redis/client.js'

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

  it('reads cluster and sentinel URLs: nodes, sentinels, master name, database, credentials, TLS', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379/1')).toEqual({ kind: 'standalone', url: 'redis://127.0.0.1:6379/1' })
    expect(parseRedisUrl('redis+cluster://u:p%40ss@10.0.0.1:7000,[::1]:7001')).toEqual({
      kind: 'cluster',
      nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '::1', port: 7001 }],
      tls: false,
      username: 'u',
      password: 'p@ss'
    })
    expect(parseRedisUrl('rediss+sentinel://:secret@s1:26379,s2:26379/main/3')).toEqual({
      kind: 'sentinel',
      sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }],
      name: 'main',
      db: 3,
      tls: true,
      password: 'secret'
    })
    const env = { NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(32) }
    expect(loadConfig({ ...env, REDIS_URL: 'redis+cluster://127.0.0.1:7000' }).queueRedisUrl).toBe('redis+cluster://127.0.0.1:7000')
  })

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://localhost/x' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ QUEUE_REDIS_URL: 'http://x' }, 'QUEUE_REDIS_URL'],
    [{ REDIS_URL: 'redis+cluster://10.0.0.1:7000,10.0.0.2' }, 'REDIS_URL'],
    [{ REDIS_URL: 'redis+cluster://10.0.0.1:7000/2' }, 'REDIS_URL'],
    [{ QUEUE_REDIS_URL: 'redis+sentinel://10.0.0.1:26379' }, 'QUEUE_REDIS_URL'],
    [{ REDIS_URL: 'redis+sentinel://10.0.0.1:26379/mymaster/x' }, 'REDIS_URL'],
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
