// Small data hooks.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { subscribe, type StreamEvent } from './events'

export interface Resource<T> {
  data: T | undefined
  error: unknown
  loading: boolean
  reload(): void
  setData(update: (previous: T | undefined) => T | undefined): void
}

/** Loads `loader` whenever `deps` change (aborting the previous load); keeps the last data while reloading. */
export function useResource<T>(loader: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Resource<T> {
  const [data, setDataState] = useState<T | undefined>(undefined)
  const [error, setError] = useState<unknown>(null)
  const [loading, setLoading] = useState(true)
  const [tick, setTick] = useState(0)
  const loaderRef = useRef(loader)
  loaderRef.current = loader

  useEffect(() => {
    const controller = new AbortController()
    setLoading(true)
    loaderRef.current(controller.signal).then(
      (value) => {
        if (controller.signal.aborted) return
        setDataState(() => value)
        setError(null)
        setLoading(false)
      },
      (err: unknown) => {
        if (controller.signal.aborted) return
        setError(err)
        setLoading(false)
      }
    )
    return () => controller.abort()
  }, [...deps, tick])

  const reload = useCallback(() => setTick((n) => n + 1), [])
  const setData = useCallback((update: (previous: T | undefined) => T | undefined) => setDataState(update), [])
  return { data, error, loading, reload, setData }
}

/** Calls `handler` for each live event while mounted (the latest handler, without resubscribing). */
export function useEvents(handler: (event: StreamEvent) => void): void {
  const ref = useRef(handler)
  ref.current = handler
  useEffect(() => subscribe((event) => ref.current(event)), [])
}

/** One interval per period, shared by every component that shows the time (e.g. each Countdown). */
interface Ticker {
  timer: ReturnType<typeof setInterval>
  subscribers: Set<(now: number) => void>
}
const tickers = new Map<number, Ticker>()

/** Calls `subscriber` every `ms`; the interval runs while it has subscribers (started by the first, stopped with the last). */
function onTick(ms: number, subscriber: (now: number) => void): () => void {
  let ticker = tickers.get(ms)
  if (!ticker) {
    const subscribers = new Set<(now: number) => void>()
    const timer = setInterval(() => {
      const now = Date.now()
      for (const notify of subscribers) notify(now)
    }, ms)
    ticker = { timer, subscribers }
    tickers.set(ms, ticker)
  }
  const active = ticker
  active.subscribers.add(subscriber)
  return () => {
    active.subscribers.delete(subscriber)
    if (active.subscribers.size === 0) {
      clearInterval(active.timer)
      if (tickers.get(ms) === active) tickers.delete(ms)
    }
  }
}

/** The current time, ticking every `ms` while mounted (one shared interval, however many use it). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now)
  useEffect(() => onTick(ms, setNow), [ms])
  return now
}

/**
 * A stable function that runs the latest `fn` at most once every `ms`: a call after a quiet spell runs at
 * once, calls during the wait coalesce into one at its end (trailing). A pending run is dropped on unmount.
 */
export function useThrottled(fn: () => void, ms: number): () => void {
  const fnRef = useRef(fn)
  fnRef.current = fn
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null)
  const lastRun = useRef(0)
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current)
      timer.current = null
    },
    []
  )
  return useCallback(() => {
    if (timer.current) return
    const wait = Math.max(0, lastRun.current + ms - Date.now())
    timer.current = setTimeout(() => {
      timer.current = null
      lastRun.current = Date.now()
      fnRef.current()
    }, wait)
  }, [ms])
}

/** `value`, once it has stopped changing for `ms`. */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value)
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms)
    return () => clearTimeout(timer)
  }, [value, ms])
  return settled
}
