import { readFileSync } from 'node:fs'
import type { ClientContext, Result } from 'ioredis'
import type { RedisClient } from './client.js'

const lua = (name: string) => readFileSync(new URL(`./scripts/${name}.lua`, import.meta.url), 'utf8')

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    scoreSamples(numKeys: number, ...keysAndArgs: (string | number | Buffer)[]): Result<unknown[], Context>
    forgetSeries(numKeys: number, ...keysAndArgs: string[]): Result<number, Context>
    admitSeries(numKeys: number, ...keysAndArgs: (string | number)[]): Result<[number, number[]], Context>
  }
}

/** Registers the Lua scripts as commands (EVALSHA, falling back to EVAL after a SCRIPT FLUSH or restart). */
export function defineScripts(redis: RedisClient): void {
  if (typeof redis.scoreSamples === 'function') return
  redis.defineCommand('scoreSamples', { lua: lua('score-samples') })
  redis.defineCommand('forgetSeries', { lua: lua('forget-series') })
  redis.defineCommand('admitSeries', { lua: lua('admit-series') })
}
