import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../servers.js'

/** The real API (or worker) as a child process: what production runs, killable with real signals. */
export async function startProcess(entry: 'src/server.ts' | 'src/worker.ts', env: Record<string, string>) {
  const port = await freePort()
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { ...process.env, LOG_LEVEL: 'warn', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  const collect = (chunk: Buffer) => (stderr = (stderr + String(chunk)).slice(-200_000))
  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = `http://127.0.0.1:${port}`
  if (entry === 'src/server.ts') {
    for (let i = 0; ; i++) {
      if (await fetch(`${url}/health/live`).then((r) => r.ok, () => false)) break
      if (i > 150 || child.exitCode !== null) throw new Error(`API did not start: ${stderr}`)
      await sleep(100)
    }
  }
  return {
    url,
    child,
    exited,
    /** the tail of everything the process printed (logs and errors) */
    stderr: () => stderr,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
}

export async function json(url: string, init: { method?: string; token?: string; body?: unknown } = {}) {
  const started = Date.now()
  try {
    const res = await fetch(url, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: { 'content-type': 'application/json', ...(init.token ? { authorization: `Bearer ${init.token}` } : {}) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(10_000)
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers, ms: Date.now() - started }
  } catch (err) {
    return { status: 0, body: { error: String(err) }, headers: new Headers(), ms: Date.now() - started }
  }
}

/** Signup, an enterprise plan and an agent key on a running API. */
export async function tenant(url: string) {
  const signup = await json(`${url}/v1/auth/signup`, {
    body: { email: `fault-${Date.now()}-${Math.random().toString(36).slice(2)}@example.test`, password: 'correct horse battery staple', organization: 'Faults' }
  })
  if (signup.status !== 201) throw new Error(`signup: ${JSON.stringify(signup.body)}`)
  const token = signup.body.accessToken as string
  await json(`${url}/v1/subscription`, { method: 'PUT', token, body: { plan: 'enterprise' } })
  const key = await json(`${url}/v1/api-keys`, { token, body: { name: 'agent', role: 'agent' } })
  return { token, key: key.body.key as string, organizationId: signup.body.organization.id as string }
}
