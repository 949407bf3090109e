// Type guards for the live events' payloads (a large event arrives truncated: { id, truncated: true }).
import type { Action, Incident } from './types'

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

/** Any object with a string `id` (a full or a truncated event payload). */
export function hasId(value: unknown): value is { id: string } {
  return isObject(value) && typeof value.id === 'string'
}

/** A full payload (not truncated) with a string `id` and every one of `fields`. */
function isFull(value: unknown, fields: string[]): boolean {
  return hasId(value) && !('truncated' in value) && fields.every((field) => field in value)
}

export const isIncident = (value: unknown): value is Incident => isFull(value, ['status', 'openedAt'])

export const isAction = (value: unknown): value is Action => isFull(value, ['status', 'expiresAt'])
