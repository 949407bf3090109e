/*
 * Numenta Anomaly Benchmark (NAB) scoring, written for this project from NAB's published rules
 * (numenta/NAB nab/sweeper.py and runner.normalize, MIT). Pure functions: no I/O.
 *
 * Per file:
 * - The first 15% of rows (at most 750 = 15% of 5000) are probation: detections there are ignored, and a
 *   window that ends inside probation is not scored.
 * - Each labelled window scores the best (= earliest) detection inside it, weighted by a scaled sigmoid of
 *   its position: a detection on the window's first row earns exactly tpWeight, later ones less. A window
 *   without detections costs fnWeight.
 * - Every detected row outside a window is a false positive costing up to fpWeight: the full weight
 *   before the first window and well after one, less shortly after a window ends.
 *
 * Normalised over a set of files: 100 * (raw - null) / (perfect - null), where null is what a detector
 * that never fires scores (minus fnWeight per scored window) and perfect is tpWeight per labelled window.
 */

export interface Profile {
  /** Weight of a detection on a window's first row. */
  tp: number
  /** Cost of a missed window. */
  fn: number
  /** Cost of a false-positive row far from (or before) any window. */
  fp: number
}

export const PROFILES = {
  standard: { tp: 1.0, fn: 1.0, fp: 0.11 },
  reward_low_FP_rate: { tp: 1.0, fn: 1.0, fp: 0.22 },
  reward_low_FN_rate: { tp: 1.0, fn: 2.0, fp: 0.11 }
} as const satisfies Record<string, Profile>

export type ProfileName = keyof typeof PROFILES

export const PROFILE_NAMES = Object.keys(PROFILES) as ProfileName[]

/** A labelled series, as far as scoring needs it: row timestamps and windows (both epoch ms). */
export interface NabSeries {
  timestamps: number[]
  /** Inclusive [start, end]; both must be row timestamps. */
  windows: [number, number][]
}

export interface FileScore {
  /** Raw (unnormalised) score: sum over scored windows plus the false positives' (negative) weights. */
  score: number
  /** Detected rows inside a window (after probation). */
  tp: number
  /** Detected rows outside every window (after probation). */
  fp: number
  /** Scored windows with no detection. */
  fn: number
  /** Scored windows with at least one detection. */
  windowsFound: number
  /** Windows that reach past probation (the ones scored). */
  windowsTotal: number
}

const PROBATION_FRACTION = 0.15
const PROBATION_CAP_ROWS = 5000

/** Rows at the start of a file whose detections NAB ignores. May be fractional only in theory (the cap is 750). */
export function probationRows(rows: number): number {
  return Math.min(Math.floor(PROBATION_FRACTION * rows), PROBATION_FRACTION * PROBATION_CAP_ROWS)
}

/** NAB's scaled sigmoid: +1 towards p = -inf, 0 at p = 0, -1 towards +inf, and exactly -1 beyond p = 3. */
export function scaledSigmoid(p: number): number {
  if (p > 3) return -1
  return 2 / (1 + Math.exp(5 * p)) - 1
}

/** Weight of a detection on a window's first row before rescaling, used to rescale it to exactly tpWeight. */
const MAX_TP = scaledSigmoid(-1)

function resolve(profile: ProfileName | Profile): Profile {
  if (typeof profile !== 'string') return profile
  const found = (PROFILES as Record<string, Profile>)[profile]
  if (!found) throw new Error(`unknown NAB profile '${profile}' (known: ${PROFILE_NAMES.join(', ')})`)
  return found
}

interface WindowRows {
  first: number
  last: number
}

/** Windows as row ranges. A duplicated timestamp resolves to its first row, as NAB's list.index does. */
function windowRows(timestamps: number[], windows: [number, number][]): WindowRows[] {
  const firstRow = new Map<number, number>()
  timestamps.forEach((t, i) => {
    if (!firstRow.has(t)) firstRow.set(t, i)
  })
  const rowOf = (t: number, which: string, k: number): number => {
    const row = firstRow.get(t)
    if (row === undefined) throw new Error(`window ${k} ${which} ${new Date(t).toISOString()} is not a row timestamp`)
    return row
  }
  const out: WindowRows[] = []
  windows.forEach(([start, end], k) => {
    const first = rowOf(start, 'start', k)
    const last = rowOf(end, 'end', k)
    if (last < first) throw new Error(`window ${k} ends (row ${last}) before it starts (row ${first})`)
    const prev = out[out.length - 1]
    if (prev && first <= prev.last) throw new Error(`window ${k} (from row ${first}) overlaps or precedes window ${k - 1} (to row ${prev.last})`)
    out.push({ first, last })
  })
  return out
}

/**
 * Score one file's detections (one boolean per row) under a profile.
 * Throws if the lengths differ or a window is not a sorted, non-overlapping pair of row timestamps.
 */
export function scoreFile(
  timestampsMs: number[],
  windows: [number, number][],
  detected: boolean[],
  profile: ProfileName | Profile
): FileScore {
  const weights = resolve(profile)
  const n = timestampsMs.length
  if (detected.length !== n) throw new Error(`detected has ${detected.length} entries for ${n} rows`)
  const ranges = windowRows(timestampsMs, windows)
  const probation = probationRows(n)

  let tp = 0
  let fp = 0
  let fpSum = 0
  let windowSum = 0
  let windowsFound = 0
  let windowsTotal = 0

  // Walk the gaps and windows in row order. `after` is the window the gap follows (none before the first).
  let row = 0
  let after: WindowRows | undefined
  const scoreGap = (end: number): void => {
    for (; row < end; row++) {
      if (row < probation || !detected[row]) continue
      fp++
      // Before any window a false positive costs the full weight; after one, it grows from ~0 to the full
      // weight over (width - 1) rows, and is the full weight from 3 * (width - 1) rows on.
      fpSum += after ? scaledSigmoid((row - after.last) / (after.last - after.first)) * weights.fp : -weights.fp
    }
  }

  for (const range of ranges) {
    scoreGap(range.first)
    const width = range.last - range.first + 1
    let best: number | undefined
    for (; row <= range.last; row++) {
      if (row < probation || !detected[row]) continue
      tp++
      const weighted = (scaledSigmoid(-(range.last - row + 1) / width) * weights.tp) / MAX_TP
      best = best === undefined ? weighted : Math.max(best, weighted)
    }
    if (range.last >= probation) {
      windowsTotal++
      if (best === undefined) windowSum -= weights.fn
      else {
        windowsFound++
        windowSum += best
      }
    }
    after = range
  }
  scoreGap(n)

  return { score: windowSum + fpSum, tp, fp, fn: windowsTotal - windowsFound, windowsFound, windowsTotal }
}

/** What a detector that never fires scores on these files: minus fnWeight per scored window. */
export function nullScore(files: NabSeries[], profile: ProfileName | Profile): number {
  let total = 0
  for (const file of files) {
    total += scoreFile(file.timestamps, file.windows, new Array<boolean>(file.timestamps.length).fill(false), profile).score
  }
  return total
}

/** The best possible raw score on these files: tpWeight per labelled window (NAB counts every window here). */
export function perfectScore(files: NabSeries[], profile: ProfileName | Profile): number {
  const windows = files.reduce((sum, file) => sum + file.windows.length, 0)
  return windows * resolve(profile).tp
}

/**
 * NAB's normalised score of a raw total summed over `files`: 0 = the null detector, 100 = perfect.
 * Returns NaN when the files have no windows (null and perfect are both 0).
 */
export function normalize(rawTotal: number, profile: ProfileName | Profile, files: NabSeries[]): number {
  const base = nullScore(files, profile)
  const perfect = perfectScore(files, profile)
  return (100 * (rawTotal - base)) / (perfect - base)
}
