import { describe, expect, it } from 'vitest'
import { globMatches, inSchedule, suppressedUpTo, suppresses, type RuleWindow } from '../../../src/modules/suppression/matcher.js'

const always = { startsAt: new Date(0), endsAt: new Date('2100-01-01T00:00:00Z') }
const rule = (overrides: Partial<RuleWindow>): RuleWindow => ({
  servicePattern: '*',
  metricPattern: '*',
  maxSeverity: null,
  schedule: null,
  ...always,
  ...overrides
})

describe('suppression matching', () => {
  it('globs match whole names with * only', () => {
    expect(globMatches('checkout-*', 'checkout-eu')).toBe(true)
    expect(globMatches('checkout-*', 'my-checkout-eu')).toBe(false)
    expect(globMatches('*.p99', 'latency.p99')).toBe(true)
    expect(globMatches('latency.p99', 'latencyXp99')).toBe(false)
    expect(globMatches('a*b*c', 'aXXbYYc')).toBe(true)
  })

  it('respects the absolute window', () => {
    const r = rule({ startsAt: new Date('2026-01-01T10:00:00Z'), endsAt: new Date('2026-01-01T11:00:00Z') })
    const at = (iso: string) => suppresses(r, { service: 's', metric: 'm', severity: 'warning', at: Date.parse(iso) })
    expect(at('2026-01-01T09:59:59Z')).toBe(false)
    expect(at('2026-01-01T10:00:00Z')).toBe(true)
    expect(at('2026-01-01T11:00:00Z')).toBe(false)
  })

  it('maxSeverity warning suppresses warnings but not criticals', () => {
    const r = rule({ maxSeverity: 'warning' })
    expect(suppresses(r, { service: 's', metric: 'm', severity: 'warning', at: Date.now() })).toBe(true)
    expect(suppresses(r, { service: 's', metric: 'm', severity: 'critical', at: Date.now() })).toBe(false)
    expect(suppressedUpTo([r], 's', 'm', Date.now())).toBe('warning')
    expect(suppressedUpTo([r, rule({})], 's', 'm', Date.now())).toBe('critical')
    expect(suppressedUpTo([rule({ servicePattern: 'other' })], 's', 'm', Date.now())).toBeNull()
  })

  it('recurring weekly windows use the rule time zone, including windows past midnight', () => {
    // Mondays 09:00–10:00 in New York (UTC-5 in January).
    const ny = { weekdays: [1], start: '09:00', end: '10:00', timezone: 'America/New_York' }
    expect(inSchedule(ny, Date.parse('2026-01-05T14:30:00Z'))).toBe(true) // Mon 09:30 NY
    expect(inSchedule(ny, Date.parse('2026-01-05T09:30:00Z'))).toBe(false) // Mon 04:30 NY
    expect(inSchedule(ny, Date.parse('2026-01-06T14:30:00Z'))).toBe(false) // Tue

    // Saturday 22:00 → Sunday 06:00 in Tokyo (UTC+9).
    const night = { weekdays: [6], start: '22:00', end: '06:00', timezone: 'Asia/Tokyo' }
    expect(inSchedule(night, Date.parse('2026-01-03T13:30:00Z'))).toBe(true) // Sat 22:30 JST
    expect(inSchedule(night, Date.parse('2026-01-03T20:00:00Z'))).toBe(true) // Sun 05:00 JST
    expect(inSchedule(night, Date.parse('2026-01-03T21:30:00Z'))).toBe(false) // Sun 06:30 JST
    expect(inSchedule(night, Date.parse('2026-01-02T13:30:00Z'))).toBe(false) // Fri 22:30 JST

    // Daylight saving: 09:30 Paris is 08:30Z in winter and 07:30Z in summer.
    const paris = { weekdays: [1, 2, 3, 4, 5], start: '09:00', end: '10:00', timezone: 'Europe/Paris' }
    expect(inSchedule(paris, Date.parse('2026-01-07T08:30:00Z'))).toBe(true)
    expect(inSchedule(paris, Date.parse('2026-07-08T07:30:00Z'))).toBe(true)
    expect(inSchedule(paris, Date.parse('2026-07-08T08:30:00Z'))).toBe(false)
  })
})
