import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readCorpus } from '../../scripts/nab/corpus.js'
import { PROFILES, normalize, nullScore, perfectScore, probationRows, scaledSigmoid, scoreFile } from '../../scripts/nab/score.js'

/*
 * Hand-computed values. With s(p) = 2 / (1 + e^(5p)) - 1 (NAB's scaled sigmoid, = -tanh(2.5 p)):
 *   maxTP = s(-1) = tanh(2.5) = 0.98661429815143
 *   a detection on row r of a window [a, b] (width w = b - a + 1) earns s(-(b - r + 1) / w) / maxTP * tpWeight
 *   a false positive on row r after a window [a, b] costs s((r - b) / (w - 1)) * fpWeight, before any window -fpWeight
 */
const MINUTE = 60_000
const T0 = Date.UTC(2014, 3, 1)
const rows = (n: number): number[] => Array.from({ length: n }, (_, i) => T0 + i * MINUTE)
const at = (row: number): number => T0 + row * MINUTE
const flags = (n: number, ...on: number[]): boolean[] => Array.from({ length: n }, (_, i) => on.includes(i))

// 40 rows: probation = floor(0.15 * 40) = 6 rows; one window on rows 20..24 (width 5).
const N = 40
const TS = rows(N)
const WINDOW: [number, number][] = [[at(20), at(24)]]
const score = (profile: keyof typeof PROFILES, ...on: number[]) => scoreFile(TS, WINDOW, flags(N, ...on), profile)

describe('NAB scoreFile', () => {
  it('the scaled sigmoid matches tanh', () => {
    expect(scaledSigmoid(-1)).toBeCloseTo(0.98661429815143, 12)
    expect(scaledSigmoid(0)).toBe(0)
    expect(scaledSigmoid(0.25)).toBeCloseTo(-0.55459972234938, 12)
    expect(scaledSigmoid(3.01)).toBe(-1)
  })

  it('a detection on the window start earns exactly +1, later ones less', () => {
    expect(score('standard', 20)).toEqual({ score: 1, tp: 1, fp: 0, fn: 0, windowsFound: 1, windowsTotal: 1 })
    // row 22: s(-3/5) / maxTP = tanh(1.5) / tanh(2.5) = 0.905148253644866 / 0.98661429815143
    expect(score('standard', 22).score).toBeCloseTo(0.91742868042841, 12)
    // last row 24: s(-1/5) / maxTP = tanh(0.5) / tanh(2.5)
    expect(score('standard', 24).score).toBeCloseTo(0.46838684390228, 12)
  })

  it('only the earliest detection in a window counts, but every detected row is a tp', () => {
    expect(score('standard', 20, 22, 24)).toMatchObject({ score: 1, tp: 3, windowsFound: 1 })
    expect(score('standard', 22, 24).score).toBeCloseTo(0.91742868042841, 12)
  })

  it('a missed window costs fnWeight', () => {
    expect(score('standard')).toEqual({ score: -1, tp: 0, fp: 0, fn: 1, windowsFound: 0, windowsTotal: 1 })
    expect(score('reward_low_FP_rate').score).toBe(-1)
    expect(score('reward_low_FN_rate').score).toBe(-2)
  })

  it('a false positive before any window costs the full fpWeight', () => {
    expect(score('standard', 10, 20)).toMatchObject({ score: 1 - 0.11, tp: 1, fp: 1 })
    expect(score('reward_low_FP_rate', 10, 20).score).toBeCloseTo(1 - 0.22, 12)
    expect(score('reward_low_FN_rate', 10, 20).score).toBeCloseTo(1 - 0.11, 12)
    // missed window plus the false positive
    expect(score('standard', 10).score).toBeCloseTo(-1.11, 12)
  })

  it('a false positive just after a window costs less, and the full weight from 3 widths on', () => {
    // row 25: s((25 - 24) / (5 - 1)) * 0.11 = -tanh(0.625) * 0.11 = -0.0610059694584
    expect(score('standard', 20, 25).score).toBeCloseTo(1 - 0.06100596945843, 12)
    expect(score('reward_low_FP_rate', 20, 25).score).toBeCloseTo(1 - 0.12201193891686, 12)
    // row 37: (37 - 24) / 4 = 3.25 > 3, so exactly -1 * 0.11
    expect(score('standard', 20, 37).score).toBeCloseTo(1 - 0.11, 12)
  })

  it('ignores detections inside probation', () => {
    expect(probationRows(40)).toBe(6)
    expect(probationRows(1000)).toBe(150)
    expect(probationRows(6000)).toBe(750) // capped at 15% of 5000
    expect(score('standard', 0, 1, 2, 3, 4, 5)).toEqual({ score: -1, tp: 0, fp: 0, fn: 1, windowsFound: 0, windowsTotal: 1 })
    expect(score('standard', 6)).toMatchObject({ fp: 1 })
    expect(score('standard', 6).score).toBeCloseTo(-1.11, 12)
  })

  it('does not score a window that ends inside probation, and its detections count for nothing', () => {
    const early: [number, number][] = [[at(2), at(4)]]
    expect(scoreFile(TS, early, flags(N, 2), 'standard')).toEqual({ score: 0, tp: 0, fp: 0, fn: 0, windowsFound: 0, windowsTotal: 0 })
    // it still discounts a false positive just after it: row 8 -> s((8 - 4) / 2) * 0.11 = -tanh(5) * 0.11
    expect(scoreFile(TS, early, flags(N, 8), 'standard').score).toBeCloseTo(-0.10999001246889, 12)
  })

  it('rejects inconsistent input', () => {
    expect(() => scoreFile(TS, WINDOW, flags(N - 1), 'standard')).toThrow(/39 entries for 40 rows/)
    expect(() => scoreFile(TS, [[at(20) + 1, at(24)]], flags(N), 'standard')).toThrow(/not a row timestamp/)
    expect(() => scoreFile(TS, [[at(20), at(24)], [at(22), at(30)]], flags(N), 'standard')).toThrow(/overlaps/)
  })
})

describe('NAB normalize', () => {
  // File A: the 40-row series above (1 window); file B: 40 rows with windows on rows 10..12 and 30..34.
  const fileA = { timestamps: TS, windows: WINDOW }
  const fileB = { timestamps: TS, windows: [[at(10), at(12)], [at(30), at(34)]] as [number, number][] }
  const files = [fileA, fileB]
  const total = (profile: keyof typeof PROFILES, onA: number[], onB: number[]): number =>
    scoreFile(fileA.timestamps, fileA.windows, flags(N, ...onA), profile).score +
    scoreFile(fileB.timestamps, fileB.windows, flags(N, ...onB), profile).score

  it('gives 0 for no detections and 100 for flagging each window start', () => {
    for (const profile of ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'] as const) {
      expect(normalize(total(profile, [], []), profile, files)).toBe(0)
      expect(normalize(total(profile, [20], [10, 30]), profile, files)).toBe(100)
    }
  })

  it('scales linearly between the null and the perfect score', () => {
    // standard: null = -3, perfect = 3; finding A's window only: 1 - 1 - 1 = -1 -> 100 * 2 / 6
    expect(nullScore(files, 'standard')).toBe(-3)
    expect(perfectScore(files, 'standard')).toBe(3)
    expect(normalize(total('standard', [20], []), 'standard', files)).toBeCloseTo(100 / 3, 12)
  })

  it('reward_low_FN_rate doubles the cost of a miss', () => {
    // null = -2 * 3 = -6, perfect = 3; finding A's window only: 1 - 2 - 2 = -3 -> 100 * 3 / 9
    expect(nullScore(files, 'reward_low_FN_rate')).toBe(-6)
    expect(total('reward_low_FN_rate', [20], [])).toBe(-3)
    expect(normalize(-3, 'reward_low_FN_rate', files)).toBeCloseTo(100 / 3, 12)
  })
})

describe('NAB readCorpus', () => {
  let dir: string | undefined
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })
  const write = (files: Record<string, string>, windows: Record<string, [string, string][]>): string => {
    dir = mkdtempSync(join(tmpdir(), 'nab-corpus-'))
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(dir, 'data', name, '..'), { recursive: true })
      writeFileSync(join(dir, 'data', name), text)
    }
    writeFileSync(join(dir, 'combined_windows.json'), JSON.stringify(windows))
    return dir
  }
  const CSV = 'timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,2\n2014-04-01 00:10:00,3\n'

  it('reads files sorted by name with windows in epoch ms', () => {
    const root = write(
      { 'b/x.csv': CSV, 'a/y.csv': CSV },
      { 'a/y.csv': [], 'b/x.csv': [['2014-04-01 00:05:00.000000', '2014-04-01 00:10:00.000000']], 'c/gone.csv': [] }
    )
    const corpus = readCorpus(root)
    expect(corpus.map((f) => f.name)).toEqual(['a/y.csv', 'b/x.csv'])
    expect(corpus[1]).toEqual({
      name: 'b/x.csv',
      timestamps: [T0, T0 + 5 * MINUTE, T0 + 10 * MINUTE],
      values: [1.5, 2, 3],
      windows: [[T0 + 5 * MINUTE, T0 + 10 * MINUTE]]
    })
  })

  it('names the file and line of a bad row', () => {
    expect(() => readCorpus(write({ 'a/y.csv': CSV + '2014-04-01 00:15:00,\n' }, { 'a/y.csv': [] }))).toThrow("a/y.csv: line 5: bad value ''")
    expect(() => readCorpus(write({ 'a/y.csv': CSV + '2014-02-30 00:15:00,1\n' }, { 'a/y.csv': [] }))).toThrow('a/y.csv: line 5: bad timestamp')
  })

  it('names the file of a window timestamp that is not a row', () => {
    const root = write({ 'a/y.csv': CSV }, { 'a/y.csv': [['2014-04-01 00:05:00', '2014-04-01 00:07:00']] })
    expect(() => readCorpus(root)).toThrow("a/y.csv: window 0: timestamp '2014-04-01 00:07:00' is not a row of a/y.csv")
  })

  it('names a file with no windows entry', () => {
    expect(() => readCorpus(write({ 'a/y.csv': CSV }, {}))).toThrow('a/y.csv: no entry in combined_windows.json')
  })
})
