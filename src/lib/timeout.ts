import { setTimeout as sleep } from 'node:timers/promises'

/** Resolves with the promise, or rejects after `ms` (the promise is left to settle on its own). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const abort = new AbortController()
  try {
    return await Promise.race([
      promise,
      sleep(ms, undefined, { signal: abort.signal }).then(() => {
        throw new Error(`${what} did not answer within ${ms}ms`)
      })
    ])
  } finally {
    abort.abort()
  }
}
