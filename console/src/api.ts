// Same-origin API client: cookie session, CSRF header on every non-GET, one shared refresh on 401.
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

/** Renews the session; concurrent callers share one request. Rejects with ApiError(401) when the session is over. */
export function refreshSession(): Promise<SessionReply> {
  refreshing ??= (async () => {
    try {
      const response = await send('POST', `${SESSION}/refresh`, {})
      if (!response.ok) throw await errorOf(response)
      return acceptSession((await response.json()) as SessionReply)
    } finally {
      refreshing = null
    }
  })()
  return refreshing
}

async function readBody<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T
  const text = await response.text()
  return (text ? JSON.parse(text) : undefined) as T
}

/**
 * One API call. A 401 refreshes the session once and repeats the call; when the refresh fails too,
 * the app is sent to sign-in and the call rejects with that 401.
 */
export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  let response = await send(method, path, options)
  if (response.status === 401) {
    try {
      await refreshSession()
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onUnauthenticated()
      throw await errorOf(response)
    }
    response = await send(method, path, options)
    if (response.status === 401) onUnauthenticated()
  } else if (response.status === 403 && method !== 'GET') {
    // A stale CSRF token (e.g. another tab signed in again): fetch the current one and repeat once.
    const error = await errorOf(response.clone())
    if (error.code && /csrf/i.test(error.code)) {
      await loadSession()
      response = await send(method, path, options)
    }
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
