// Display helpers.
import type { Labels, Role } from './types'

const ROLE_RANK: Record<Role, number> = { agent: 0, operator: 1, admin: 2, owner: 3 }
export const ROLES: Role[] = ['agent', 'operator', 'admin', 'owner']

export function atLeast(role: Role | undefined, minimum: Role): boolean {
  return role !== undefined && ROLE_RANK[role] >= ROLE_RANK[minimum]
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' })
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' })

export function localDateTime(iso: string): string {
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date)
}

export function localTime(iso: string): string {
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? iso : timeOnly.format(date)
}

export function formatNumber(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–'
  if (value !== 0 && (Math.abs(value) >= 1e6 || Math.abs(value) < 1e-3)) return value.toExponential(2)
  return Number(value.toPrecision(digits + 2)).toLocaleString(undefined, { maximumFractionDigits: digits })
}

export function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels)
  return entries.length === 0 ? '' : `{${entries.map(([name, value]) => `${name}="${value}"`).join(', ')}}`
}

/** "1h 2m 3s" style duration of a number of milliseconds (negative reads as 0s). */
export function formatDuration(ms: number): string {
  let seconds = Math.max(0, Math.floor(ms / 1000))
  const hours = Math.floor(seconds / 3600)
  seconds -= hours * 3600
  const minutes = Math.floor(seconds / 60)
  seconds -= minutes * 60
  if (hours > 0) return `${hours}h ${minutes}m ${seconds}s`
  if (minutes > 0) return `${minutes}m ${seconds}s`
  return `${seconds}s`
}

export const humanize = (value: string) => value.replace(/_/g, ' ')
