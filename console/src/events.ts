// One shared EventSource on /v1/events: reconnects with backoff and jitter. The stream also ends when the
// access token expires, but an error says nothing about why (network blip, restart, 429 too_many_streams):
// before reconnecting, ask the server whether the session still holds and renew it only when it does not.
import { checkSession, isSessionOver, refreshSession, sessionEnded } from './api'

export type EventType = 'anomaly.detected' | 'incident.opened' | 'incident.updated' | 'incident.resolved' | 'action.updated'
export const EVENT_TYPES: EventType[] = ['anomaly.detected', 'incident.opened', 'incident.updated', 'incident.resolved', 'action.updated']

/** A stream event, or 'reconnected' after a gap (events may have been missed: refetch). */
export type StreamEvent = { type: EventType; data: unknown } | { type: 'reconnected'; data: null }
type Listener = (event: StreamEvent) => void
export type ConnectionState = 'connecting' | 'open' | 'retrying'

const listeners = new Set<Listener>()
const stateListeners = new Set<(state: ConnectionState) => void>()
let source: EventSource | null = null
let retryTimer: ReturnType<typeof setTimeout> | null = null
let failures = 0
let everOpened = false
let state: ConnectionState = 'connecting'

function setState(next: ConnectionState) {
  state = next
  for (const listener of stateListeners) listener(next)
}

function emit(event: StreamEvent) {
  for (const listener of listeners) listener(event)
}

function connect() {
  setState(failures === 0 ? 'connecting' : 'retrying')
  const es = new EventSource('/v1/events', { withCredentials: true })
  source = es
  es.onopen = () => {
    const gap = everOpened
    everOpened = true
    failures = 0
    setState('open')
    if (gap) emit({ type: 'reconnected', data: null })
  }
  for (const type of EVENT_TYPES) {
    es.addEventListener(type, (message: MessageEvent<string>) => {
      let data: unknown
      try {
        data = JSON.parse(message.data)
      } catch {
        return
      }
      emit({ type, data })
    })
  }
  es.onerror = () => {
    if (source !== es) return
    es.close()
    source = null
    scheduleReconnect()
  }
}

/** Backoff with jitter: 1 s, 2 s, 4 s … up to 30 s, each ±25 %. */
function scheduleReconnect() {
  failures += 1
  setState('retrying')
  const delay = Math.min(30_000, 1000 * 2 ** Math.min(failures - 1, 5)) * (0.75 + Math.random() * 0.5)
  retryTimer = setTimeout(() => {
    retryTimer = null
    void reconnect()
  }, delay)
}

async function reconnect() {
  if (listeners.size === 0) return
  try {
    // Never refresh speculatively: only when the access cookie no longer signs anyone in.
    const current = await checkSession()
    if (!current.me) await refreshSession()
  } catch (err) {
    if (isSessionOver(err)) {
      // Session over: sign in again (the stream reopens once someone listens again).
      sessionEnded()
      return
    }
    // Cannot tell now (offline, 429, 503): try again after the next backoff, unless someone else did.
    if (listeners.size > 0 && !source && !retryTimer) scheduleReconnect()
    return
  }
  if (listeners.size > 0 && !source && !retryTimer) connect()
}

function disconnect() {
  source?.close()
  source = null
  if (retryTimer) clearTimeout(retryTimer)
  retryTimer = null
  failures = 0
  everOpened = false
}

/** Listens to the organization's events; the stream is open while anyone listens. */
export function subscribe(listener: Listener): () => void {
  listeners.add(listener)
  if (!source && !retryTimer) connect()
  return () => {
    listeners.delete(listener)
    if (listeners.size === 0) disconnect()
  }
}

export function onConnectionState(listener: (state: ConnectionState) => void): () => void {
  stateListeners.add(listener)
  listener(state)
  return () => stateListeners.delete(listener)
}
