/*
 * Reads a NAB-format corpus: <dir>/data/<category>/<file>.csv (header `timestamp,value`, timestamps like
 * `2014-04-01 00:00:00` in UTC) and <dir>/combined_windows.json ({ "<category>/<file>.csv": [[start, end], ...] }).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'

export interface CorpusFile {
  /** '<category>/<file>.csv', relative to <dir>/data, always with '/'. */
  name: string
  /** Epoch ms, non-decreasing (NAB's data repeats a timestamp at some DST changes). */
  timestamps: number[]
  values: number[]
  /** Inclusive [start, end] in epoch ms, sorted and non-overlapping; both are row timestamps. */
  windows: [number, number][]
}

const NAB_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/

/** Parses a NAB timestamp (UTC, optional fractional seconds) to epoch ms; undefined if malformed or not a real date. */
export function parseNabTimestamp(text: string): number | undefined {
  const m = NAB_TIMESTAMP.exec(text.trim())
  if (!m) return undefined
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const ms = Math.round(Number(`0.${m[7] ?? '0'}`) * 1000)
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms)
  const d = new Date(t)
  // Date.UTC rolls over out-of-range fields (Feb 30 -> Mar 2); reject those instead.
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return undefined
  if (hour > 23 || minute > 59 || second > 59) return undefined
  return t
}

function listCsv(root: string, dir: string = root): string[] {
  const out: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...listCsv(root, path))
    else if (entry.isFile() && entry.name.endsWith('.csv')) out.push(relative(root, path).split(sep).join('/'))
  }
  return out
}

function parseCsv(name: string, text: string): { timestamps: number[]; values: number[] } {
  const lines = text.split(/\r?\n/)
  while (lines.length > 0 && lines[lines.length - 1]?.trim() === '') lines.pop()
  const header = lines[0]?.trim().replace(/^\uFEFF/, '')
  if (header !== 'timestamp,value') throw new Error(`${name}: line 1: expected header 'timestamp,value', got '${header ?? ''}'`)
  const timestamps: number[] = []
  const values: number[] = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? ''
    const where = `${name}: line ${i + 1}`
    const fields = line.split(',')
    if (fields.length !== 2) throw new Error(`${where}: expected 'timestamp,value', got '${line}'`)
    const [tsText, valueText] = fields as [string, string]
    const t = parseNabTimestamp(tsText)
    if (t === undefined) throw new Error(`${where}: bad timestamp '${tsText}'`)
    const value = valueText.trim() === '' ? Number.NaN : Number(valueText)
    if (!Number.isFinite(value)) throw new Error(`${where}: bad value '${valueText}'`)
    const prev = timestamps[timestamps.length - 1]
    if (prev !== undefined && t < prev) throw new Error(`${where}: timestamp '${tsText}' goes back in time`)
    timestamps.push(t)
    values.push(value)
  }
  if (timestamps.length === 0) throw new Error(`${name}: no rows`)
  return { timestamps, values }
}

function parseWindows(name: string, raw: unknown, timestamps: number[]): [number, number][] {
  if (!Array.isArray(raw)) throw new Error(`combined_windows.json: ${name}: expected a list of [start, end] pairs`)
  const known = new Set(timestamps)
  const windows: [number, number][] = []
  raw.forEach((pair: unknown, k) => {
    const where = `combined_windows.json: ${name}: window ${k}`
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new Error(`${where}: expected a [start, end] pair of timestamp strings, got ${JSON.stringify(pair)}`)
    }
    const [start, end] = (pair as [string, string]).map((text) => {
      const t = parseNabTimestamp(text)
      if (t === undefined) throw new Error(`${where}: bad timestamp '${text}'`)
      if (!known.has(t)) throw new Error(`${where}: timestamp '${text}' is not a row of ${name}`)
      return t
    }) as [number, number]
    if (end < start) throw new Error(`${where}: ends before it starts`)
    const prev = windows[windows.length - 1]
    if (prev && start <= prev[1]) throw new Error(`${where}: overlaps or precedes window ${k - 1}`)
    windows.push([start, end])
  })
  return windows
}

/**
 * Every CSV under <dir>/data with its windows, sorted by name. Throws an Error naming the file for a
 * malformed row, a window timestamp that is not a row of its file, or a CSV with no windows entry
 * (entries for files that are not present are ignored: a corpus may be a subset of the labels).
 */
export function readCorpus(dir: string): CorpusFile[] {
  const dataDir = join(dir, 'data')
  const labelsPath = join(dir, 'combined_windows.json')
  let labels: unknown
  try {
    labels = JSON.parse(readFileSync(labelsPath, 'utf8'))
  } catch (err) {
    throw new Error(`${labelsPath}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new Error(`${labelsPath}: expected an object mapping '<category>/<file>.csv' to windows`)
  }
  const byName = labels as Record<string, unknown>
  const names = listCsv(dataDir).sort()
  if (names.length === 0) throw new Error(`${dataDir}: no CSV files`)
  return names.map((name) => {
    if (!Object.hasOwn(byName, name)) throw new Error(`${name}: no entry in combined_windows.json`)
    const { timestamps, values } = parseCsv(name, readFileSync(join(dataDir, name), 'utf8'))
    return { name, timestamps, values, windows: parseWindows(name, byName[name], timestamps) }
  })
}
