// Same-origin API client: cookie session, CSRF header on every non-GET, one guarded refresh on 401.
import type { Problem, SessionReply } from './types'

const SESSION = '/v1/auth/session'

export class ApiError extends Error {
  readonly status: number
  readonly code: string | undefined
  constructor(
    status: number,
    detail: string,
    readonly problem: Problem | null
  ) {
    super(detail)
    this.name = 'ApiError'
    this.status = status
    this.code = problem?.code
  }
}

let csrfToken = ''
const sessionListeners = new Set<(reply: SessionReply) => void>()
let onUnauthenticated: () => void = () => {}

/** Called with every session reply (sign-in, refresh, reload), so the UI sees the current user. */
export function onSessionReply(listener: (reply: SessionReply) => void): () => void {
  sessionListeners.add(listener)
  return () => sessionListeners.delete(listener)
}

/** What to do once the session is over and cannot be refreshed (the app goes to the sign-in page). */
export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler
}

/** The session is over (a refresh answered 401): go to sign-in. */
export function sessionEnded(): void {
  onUnauthenticated()
}

function acceptSession(reply: SessionReply): SessionReply {
  csrfToken = reply.csrfToken
  for (const listener of sessionListeners) listener(reply)
  return reply
}

function isProblem(value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && 'status' in value && ('detail' in value || 'title' in value)
}

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '')
  let problem: Problem | null = null
  try {
    const parsed: unknown = JSON.parse(text)
    if (isProblem(parsed)) problem = parsed
  } catch {
    // not JSON: fall back to the status text
  }
  const detail = problem?.detail || problem?.title || `${response.status} ${response.statusText || 'request failed'}`
  return new ApiError(response.status, detail, problem)
}

export interface RequestOptions {
  body?: unknown
  signal?: AbortSignal
  /** Extra headers (e.g. Idempotency-Key). */
  headers?: Record<string, string>
}

async function send(method: string, path: string, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers }
  if (method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = csrfToken
  let body: string | undefined
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.body)
  }
  return fetch(path, { method, headers, body, credentials: 'same-origin', signal: options.signal })
}

let refreshing: Promise<SessionReply> | null = null
const REFRESH_LOCK = 'autopilot-session-refresh'
/** How long to wait for another tab's refresh (held lock) before giving up. */
const LOCK_WAIT_MS = 30_000

/**
 * GET /v1/auth/session without ending anything: takes the current CSRF token, and tells the UI about the
 * user only when one is signed in (a null `me` here means "refresh first", not "go to sign-in").
 */
export async function checkSession(): Promise<SessionReply> {
  const response = await send('GET', SESSION, {})
  if (!response.ok) throw await errorOf(response)
  const reply = (await response.json()) as SessionReply
  csrfToken = reply.csrfToken
  if (reply.me) acceptSession(reply)
  return reply
}

/** Runs under the cross-tab lock: another tab may have renewed the shared cookies already. */
async function refreshIfStillNeeded(): Promise<SessionReply> {
  const current = await checkSession()
  if (current.me) return current
  if (!current.renewable) throw new ApiError(401, 'not signed in', null)
  const response = await send('POST', `${SESSION}/refresh`, {})
  if (!response.ok) throw await errorOf(response)
  return acceptSession((await response.json()) as SessionReply)
}

function withRefreshLock(task: () => Promise<SessionReply>): Promise<SessionReply> {
  // Web Locks exist in secure contexts only; elsewhere the in-tab de-duplication is all there is.
  const locks: LockManager | undefined = 'locks' in navigator ? navigator.locks : undefined
  if (!locks) return task()
  const options: LockOptions = typeof AbortSignal.timeout === 'function' ? { signal: AbortSignal.timeout(LOCK_WAIT_MS) } : {}
  return locks.request(REFRESH_LOCK, options, task).catch((err: unknown) => {
    if (err instanceof DOMException && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
      throw new Error('another tab has been renewing the session for too long')
    }
    throw err
  })
}

/**
 * Renews the session only when it needs it: refresh tokens are single-use and shared by every tab, so a
 * refresh runs under a cross-tab lock and only if GET /v1/auth/session still says nobody is signed in.
 * Concurrent callers in this tab share one attempt. Rejects with ApiError(401) when the session is over.
 */
export function refreshSession(): Promise<SessionReply> {
  refreshing ??= (async () => {
    try {
      return await withRefreshLock(refreshIfStillNeeded)
    } finally {
      refreshing = null
    }
  })()
  return refreshing
}

/** True when the refresh failed because the session is over (sign in again), not for a passing reason. */
export function isSessionOver(error: unknown): boolean {
  return error instanceof ApiError && error.status === 401
}

/** The error to show when a renewal failed for a passing reason (rate limit, outage, CSRF, network). */
export function renewalError(error: unknown): ApiError {
  const status = error instanceof ApiError ? error.status : 0
  const problem = error instanceof ApiError ? error.problem : null
  return new ApiError(status, `Could not renew the session: ${messageOf(error)}; retry.`, problem)
}

async function readBody<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T
  const text = await response.text()
  return (text ? JSON.parse(text) : undefined) as T
}

/**
 * One API call. A stale CSRF token is fetched again and the call repeated once; a 401 renews the session
 * (see refreshSession) and repeats the call. When the session is over the app is sent to sign-in and the
 * call rejects with that 401; when the renewal failed for another reason, it rejects saying so (no sign-in).
 */
export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  let response = await send(method, path, options)
  if (response.status === 403 && method !== 'GET' && method !== 'HEAD') {
    // A stale CSRF token (e.g. another tab signed in again): fetch the current one and repeat once.
    const error = await errorOf(response.clone())
    if (error.code && /csrf/i.test(error.code)) {
      await checkSession()
      response = await send(method, path, options)
    }
  }
  if (response.status === 401) {
    try {
      await refreshSession()
    } catch (err) {
      if (!isSessionOver(err)) throw renewalError(err)
      onUnauthenticated()
      throw await errorOf(response)
    }
    response = await send(method, path, options)
    if (response.status === 401) onUnauthenticated()
  }
  if (!response.ok) throw await errorOf(response)
  return readBody<T>(response)
}

export const get = <T>(path: string, signal?: AbortSignal) => request<T>('GET', path, { signal })
export const post = <T>(path: string, body?: unknown, signal?: AbortSignal) => request<T>('POST', path, { body, signal })
export const patch = <T>(path: string, body: unknown) => request<T>('PATCH', path, { body })
export const put = <T>(path: string, body: unknown) => request<T>('PUT', path, { body })
export const del = (path: string) => request<void>('DELETE', path)

/** Builds `path?query` from the defined, non-empty values. */
export function withQuery(path: string, query: Record<string, string | number | boolean | null | undefined>): string {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value))
  }
  const search = params.toString()
  return search ? `${path}?${search}` : path
}

// --- session endpoints (no refresh-and-retry: they are the session) ---

export async function loadSession(): Promise<SessionReply> {
  const response = await send('GET', SESSION, {})
  if (!response.ok) throw await errorOf(response)
  return acceptSession((await response.json()) as SessionReply)
}

/**
 * The session on app start: when the access cookie has expired (15 minutes) the longer-lived refresh
 * cookie may still hold one, so a null `me` is renewed once before anyone is sent to sign-in.
 * Rejects (with renewalError) when that renewal failed for a passing reason.
 */
export async function resumeSession(): Promise<SessionReply> {
  const reply = await checkSession()
  if (reply.me) return reply
  if (!reply.renewable) return acceptSession(reply)
  try {
    return await refreshSession()
  } catch (err) {
    if (isSessionOver(err)) return acceptSession(reply)
    throw renewalError(err)
  }
}

export async function signIn(email: string, password: string): Promise<SessionReply> {
  if (!csrfToken) await loadSession()
  const response = await send('POST', SESSION, { body: { email, password } })
  if (!response.ok) throw await errorOf(response)
  return acceptSession((await response.json()) as SessionReply)
}

export async function signOut(): Promise<void> {
  const response = await send('DELETE', SESSION, {})
  if (!response.ok && response.status !== 401) throw await errorOf(response)
}

/** The message to show for any failure. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message
  if (error instanceof Error) return error.name === 'TypeError' ? 'The network request failed. Check your connection and try again.' : error.message
  return String(error)
}
