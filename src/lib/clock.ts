/** The time source every service takes, so tests and the backtest can run on a clock they control. */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = { now: () => new Date() }

/** A clock that moves only when told to: for tests and simulations. */
export function manualClock(start: Date | number = Date.now()) {
  let current = typeof start === 'number' ? start : start.getTime()
  return {
    now: () => new Date(current),
    set: (at: Date | number) => {
      current = typeof at === 'number' ? at : at.getTime()
    },
    advance: (ms: number) => {
      current += ms
    }
  }
}
export type ManualClock = ReturnType<typeof manualClock>
