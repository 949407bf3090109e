import Type from 'typebox'
import Value from 'typebox/value'
import { RUNBOOK_ACTION_TYPES } from '../../db/schema/index.js'
import { errors, type FieldError } from '../../errors.js'

export type ActionType = (typeof RUNBOOK_ACTION_TYPES)[number]
export const ActionTypeSchema = Type.Enum(RUNBOOK_ACTION_TYPES)
export const ActionParamsSchema = Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 20 })

const RESERVED_HEADERS = /^(host|content-length|content-type|connection|transfer-encoding|x-autopilot-.*)$/i

const WebhookParams = Type.Object(
  {
    url: Type.String({ maxLength: 2048, pattern: '^https?://' }),
    method: Type.Optional(Type.Enum(['POST', 'PUT', 'PATCH'] as const)),
    headers: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$' }), Type.String({ maxLength: 1024 }), {
        maxProperties: 20,
        additionalProperties: false
      })
    ),
    body: Type.Optional(Type.Unknown())
  },
  { additionalProperties: false }
)
export interface WebhookParams {
  url: string
  method?: 'POST' | 'PUT' | 'PATCH'
  headers?: Record<string, string>
  body?: unknown
}

/** Is the URL's host in the allow-list (host names or IPs, any port)? */
export function hostAllowed(url: string, allowedHosts: string[]): boolean {
  try {
    const host = new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, '')
    return allowedHosts.includes(host)
  } catch {
    return false
  }
}

/**
 * Checks an action's parameters for its type, where they are proposed or saved in a runbook: a webhook
 * must target an allow-listed host, so nothing outside it is ever called.
 */
export function assertValidParams(type: ActionType, params: Record<string, unknown>, allowedHosts: string[], path: string) {
  if (type === 'dry_run') return
  const problems: FieldError[] = [...Value.Errors(WebhookParams, params)].map((e) => ({
    path: `${path}${e.instancePath}`,
    message: e.message
  }))
  if (problems.length === 0) {
    const webhook = params as unknown as WebhookParams
    for (const name of Object.keys(webhook.headers ?? {})) {
      if (RESERVED_HEADERS.test(name)) problems.push({ path: `${path}/headers/${name}`, message: 'is set by the autopilot' })
    }
    if (!hostAllowed(webhook.url, allowedHosts)) {
      problems.push({ path: `${path}/url`, message: 'host is not in WEBHOOK_ALLOWED_HOSTS' })
    }
  }
  if (problems.length > 0) throw errors.validation('action parameters are invalid', problems)
}
