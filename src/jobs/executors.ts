import { createHmac } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { retryDelay, RETRY } from '../lib/retry.js'
import { readSnippet, storableText } from '../lib/text.js'
import type { Outcome } from '../modules/actions/lifecycle.js'
import { hostAllowed, type WebhookParams } from '../modules/actions/params.js'

export type { Outcome }

export interface WebhookOptions {
  actionId: string
  secret: string
  allowedHosts: string[]
  timeoutMs: number
  maxAttempts: number
  /** before each attempt: renews the lease; false means the action is no longer ours to run */
  beforeAttempt: (attempt: number) => Promise<boolean>
}

const RESPONSE_SNIPPET = 2048

/**
 * `sha256=` HMAC of `<timestamp>.<action id>.<body>`: the receiver checks the timestamp is recent and
 * remembers action ids, so a captured request can be neither replayed later nor passed off as another
 * action's (a runbook with a fixed body sends the same bytes every time).
 */
export const signWebhook = (secret: string, timestamp: number, actionId: string, body: string) =>
  `sha256=${createHmac('sha256', secret).update(`${timestamp}.${actionId}.${body}`).digest('hex')}`

/**
 * Calls a webhook: signed (each attempt with its own timestamp), bounded time per attempt, 5xx and
 * network errors retried with exponential backoff, any other non-2xx final (redirects are not followed:
 * they could leave the allow-list).
 */
export async function callWebhook(params: WebhookParams, options: WebhookOptions): Promise<Outcome> {
  if (!hostAllowed(params.url, options.allowedHosts)) {
    return { status: 'failed', result: null, error: 'webhook host is no longer in WEBHOOK_ALLOWED_HOSTS', attempts: 0 }
  }
  const body = JSON.stringify(params.body ?? { actionId: options.actionId })
  let lastError = 'not attempted'
  for (let attempt = 1; attempt <= options.maxAttempts; attempt++) {
    if (!(await options.beforeAttempt(attempt))) {
      return { status: 'failed', result: null, error: 'the action lost its lease before the call', attempts: attempt - 1 }
    }
    const timestamp = Math.floor(Date.now() / 1000)
    const headers = {
      ...params.headers,
      'content-type': 'application/json',
      'x-autopilot-timestamp': String(timestamp),
      'x-autopilot-action-id': options.actionId,
      'x-autopilot-signature': signWebhook(options.secret, timestamp, options.actionId, body)
    }
    try {
      const response = await fetch(params.url, {
        method: params.method ?? 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(options.timeoutMs)
      })
      const text = await readSnippet(response, RESPONSE_SNIPPET)
      const result = { httpStatus: response.status, response: text, attempts: attempt }
      if (response.status >= 200 && response.status < 300) return { status: 'succeeded', result, error: null, attempts: attempt }
      if (response.status < 500) return { status: 'failed', result, error: `webhook answered HTTP ${response.status}`, attempts: attempt }
      lastError = `webhook answered HTTP ${response.status}`
    } catch (err) {
      lastError = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${options.timeoutMs}ms` : storableText(`request failed: ${String(err)}`.slice(0, RESPONSE_SNIPPET))
    }
    if (attempt < options.maxAttempts) await sleep(retryDelay(RETRY.webhook, attempt))
  }
  return { status: 'failed', result: null, error: `${lastError} (after ${options.maxAttempts} attempts)`, attempts: options.maxAttempts }
}
