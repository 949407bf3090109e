/**
 * Calls `report` at most once per `intervalMs`: a dependency that is down fails on every attempt (every
 * reconnect, every 100 ms sync), and one log line per interval says as much as a thousand.
 */
export function throttled<A extends unknown[]>(report: (...args: A) => void, intervalMs = 10_000): (...args: A) => void {
  let last = 0
  return (...args: A) => {
    const now = Date.now()
    if (now - last < intervalMs) return
    last = now
    report(...args)
  }
}
