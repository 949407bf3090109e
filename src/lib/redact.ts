import type { Role } from '../db/schema/index.js'
import { roleAtLeast } from './context.js'

/** What takes the place of a secret in answers to the roles below admin. */
export const REDACTED = '[redacted]'

/** Query parameter names that usually carry a credential. */
const SECRET_QUERY_NAME = /token|key|secret|passw|pwd|signature|^sig$|auth|credential|session/i

/** Admins (and owners) see action params as stored; agents and operators see receivers' secrets redacted. */
export const seesSecrets = (role: Role) => roleAtLeast(role, 'admin')

/**
 * A webhook's params as shown below admin: every header value (headers carry receivers' credentials; the
 * names are kept), the URL's user and password, and query values whose names look secret become REDACTED.
 * A copy for the answer: the stored params, which the worker sends, are never changed.
 */
export function redactParams(type: string, params: Record<string, unknown>): Record<string, unknown> {
  if (type !== 'webhook') return params
  const shown = { ...params }
  const headers = params.headers
  if (headers && typeof headers === 'object') shown.headers = Object.fromEntries(Object.keys(headers).map((name) => [name, REDACTED]))
  if (typeof params.url === 'string') shown.url = redactUrl(params.url)
  return shown
}

interface ShownAction {
  type: string
  params: Record<string, unknown>
  result?: Record<string, unknown> | null
}

/**
 * An action (as presented) for a caller of `role`: unchanged for admins; below, its params are redacted,
 * and so are the copy of them a dry run's result shows (`wouldRun.params`).
 */
export function actionShownTo<T extends ShownAction>(role: Role, action: T): T {
  if (seesSecrets(role)) return action
  const shown = { ...action, params: redactParams(action.type, action.params) }
  const wouldRun = action.result?.wouldRun as { params?: unknown } | undefined
  if (wouldRun && typeof wouldRun.params === 'object' && wouldRun.params !== null) {
    shown.result = { ...action.result, wouldRun: { ...wouldRun, params: redactParams(action.type, wouldRun.params as Record<string, unknown>) } }
  }
  return shown
}

function redactUrl(raw: string): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return raw
  }
  let changed = url.username !== '' || url.password !== ''
  if (url.username) url.username = REDACTED
  if (url.password) url.password = REDACTED
  for (const name of new Set(url.searchParams.keys())) {
    if (!SECRET_QUERY_NAME.test(name)) continue
    url.searchParams.set(name, REDACTED)
    changed = true
  }
  // The URL API percent-encodes the brackets; the answer shows the marker as it is elsewhere.
  return changed ? url.href.replaceAll(encodeURIComponent(REDACTED), REDACTED) : raw
}
