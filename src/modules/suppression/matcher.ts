import type { Severity, WeeklySchedule } from '../../db/schema/index.js'

export interface RuleWindow {
  servicePattern: string
  metricPattern: string
  maxSeverity: Severity | null
  startsAt: Date
  endsAt: Date
  schedule: WeeklySchedule | null
}

export interface AnomalyFacts {
  service: string
  metric: string
  severity: Severity
  at: number
}

/**
 * `*` matches any run of characters; everything else is literal. No regular expression and no
 * backtracking: the literal parts between stars are found left to right (the leftmost place of each is
 * always the right one), so the work grows with the value times the pattern, never exponentially —
 * `a*a*a*a*a*a*c` against a hundred `a`s is as quick as any other.
 */
export function globMatches(pattern: string, value: string): boolean {
  const parts = pattern.split('*')
  if (parts.length === 1) return pattern === value
  const first = parts[0]!
  const last = parts[parts.length - 1]!
  if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false
  const end = value.length - last.length
  let at = first.length
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i]!
    if (part === '') continue
    const found = value.indexOf(part, at)
    if (found < 0 || found + part.length > end) return false
    at = found + part.length
  }
  return true
}

const formatters = new Map<string, Intl.DateTimeFormat>()
const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 }

/** Weekday (0 = Sunday) and minute of the day of an instant, in a time zone. */
export function localTime(at: number, timeZone: string): { weekday: number; minute: number } {
  let format = formatters.get(timeZone)
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    formatters.set(timeZone, format)
  }
  const parts = Object.fromEntries(format.formatToParts(at).map((p) => [p.type, p.value]))
  return { weekday: WEEKDAYS[parts.weekday!]!, minute: Number(parts.hour) * 60 + Number(parts.minute) }
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5))

/**
 * Inside the weekly window? A window whose end is before its start runs past midnight and belongs to the
 * weekday it starts on (Saturday 22:00–06:00 covers Saturday night into Sunday morning).
 */
export function inSchedule(schedule: WeeklySchedule, at: number): boolean {
  const { weekday, minute } = localTime(at, schedule.timezone)
  const start = minutesOf(schedule.start)
  const end = minutesOf(schedule.end)
  const days = new Set(schedule.weekdays)
  if (start < end) return days.has(weekday) && minute >= start && minute < end
  return (days.has(weekday) && minute >= start) || (days.has((weekday + 6) % 7) && minute < end)
}

/** Does the rule cover this service, metric and instant? (Severity is checked by the caller.) */
export function ruleCovers(rule: RuleWindow, service: string, metric: string, at: number): boolean {
  return (
    at >= rule.startsAt.getTime() &&
    at < rule.endsAt.getTime() &&
    globMatches(rule.servicePattern, service) &&
    globMatches(rule.metricPattern, metric) &&
    (!rule.schedule || inSchedule(rule.schedule, at))
  )
}

/** The highest severity that matching rules suppress for this sample (null: none). */
export function suppressedUpTo(rules: RuleWindow[], service: string, metric: string, at: number): Severity | null {
  let upTo: Severity | null = null
  for (const rule of rules) {
    if (!ruleCovers(rule, service, metric, at)) continue
    const level = rule.maxSeverity ?? 'critical'
    if (level === 'critical') return 'critical'
    upTo = level
  }
  return upTo
}

export function suppresses(rule: RuleWindow, anomaly: AnomalyFacts): boolean {
  const level = rule.maxSeverity ?? 'critical'
  return ruleCovers(rule, anomaly.service, anomaly.metric, anomaly.at) && (level === 'critical' || anomaly.severity === 'warning')
}
