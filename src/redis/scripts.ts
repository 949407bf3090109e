import { readFileSync } from 'node:fs'
import type { ClientContext, Redis, Result } from 'ioredis'

const lua = (name: string) => readFileSync(new URL(`./scripts/${name}.lua`, import.meta.url), 'utf8')

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    scoreSamples(numKeys: number, ...keysAndArgs: (string | number)[]): Result<unknown[], Context>
  }
}

/** Registers the Lua scripts as commands (EVALSHA, falling back to EVAL after a SCRIPT FLUSH or restart). */
export function defineScripts(redis: Redis): void {
  if (typeof redis.scoreSamples === 'function') return
  redis.defineCommand('scoreSamples', { lua: lua('score-samples') })
}
