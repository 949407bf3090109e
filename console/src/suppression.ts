// Which suppression rules apply to a service/metric, and when (absolute window, optionally weekly schedule).
import type { Schedule, SuppressionRule } from './types'
import type { TimeRange } from './components/SeriesChart'

/** `*` matches any run of characters; everything else literally (as the API documents its matchers). */
export function globMatches(pattern: string | null | undefined, value: string): boolean {
  if (!pattern || pattern === '*') return true
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*')
  return new RegExp(`^${source}$`).test(value)
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const formatters = new Map<string, Intl.DateTimeFormat | null>()

function formatterFor(timezone: string): Intl.DateTimeFormat | null {
  if (!formatters.has(timezone)) {
    try {
      formatters.set(timezone, new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }))
    } catch {
      formatters.set(timezone, null)
    }
  }
  return formatters.get(timezone) ?? null
}

const minutesOf = (hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number)
  return (h ?? 0) * 60 + (m ?? 0)
}

/** Whether epoch ms `at` falls in the weekly schedule (an end before the start runs past midnight). */
export function inSchedule(at: number, schedule: Schedule): boolean {
  const format = formatterFor(schedule.timezone)
  if (!format) return true
  const parts = format.formatToParts(new Date(at))
  const day = WEEKDAYS.indexOf(parts.find((part) => part.type === 'weekday')?.value ?? '')
  const minute = Number(parts.find((part) => part.type === 'hour')?.value ?? 0) * 60 + Number(parts.find((part) => part.type === 'minute')?.value ?? 0)
  const start = minutesOf(schedule.start)
  const end = minutesOf(schedule.end)
  if (start === end) return schedule.weekdays.includes(day)
  if (start < end) return schedule.weekdays.includes(day) && minute >= start && minute < end
  return (schedule.weekdays.includes(day) && minute >= start) || (schedule.weekdays.includes((day + 6) % 7) && minute < end)
}

/** The parts of [from, to) (epoch ms) during which the rule is in effect, to the minute for schedules. */
export function ruleWindows(rule: SuppressionRule, from: number, to: number): TimeRange[] {
  const start = Math.max(from, Date.parse(rule.startsAt))
  const end = Math.min(to, Date.parse(rule.endsAt), rule.endedAt ? Date.parse(rule.endedAt) : Infinity)
  if (!(end > start)) return []
  const label = rule.reason
  if (!rule.schedule) return [{ from: start, to: end, label }]
  const ranges: TimeRange[] = []
  const step = 60_000
  let open: number | null = null
  for (let at = start; at < end; at += step) {
    const on = inSchedule(at, rule.schedule)
    if (on && open === null) open = at
    if (!on && open !== null) {
      ranges.push({ from: open, to: at, label })
      open = null
    }
  }
  if (open !== null) ranges.push({ from: open, to: end, label })
  return ranges
}

/** Rules that could match this service (by name or id) and metric. */
export function rulesFor(rules: SuppressionRule[], service: { id: string; name: string }, metric?: string): SuppressionRule[] {
  return rules.filter(
    (rule) => (globMatches(rule.service, service.name) || globMatches(rule.service, service.id)) && (metric === undefined || globMatches(rule.metric, metric))
  )
}
