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

/** The current time, ticking every `ms` while mounted. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now)
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms)
    return () => clearInterval(timer)
  }, [ms])
  return now
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
