import type { actions, ActionStatus } from '../../db/schema/index.js'
import { InvalidTransitionError } from '../../lib/domain-errors.js'

/**
 * The action lifecycle as a pure state machine: (state, event, now) → the fields that change and the
 * audit row's action. No I/O: the repository persists a change with a guarded update (the status it was
 * decided from) and its audit row.
 *
 *   pending_approval ─approve─▶ approved ─dispatch─▶ queued ─claim─▶ running ─finish─▶ succeeded ─verify─▶ (verified)
 *        │  └─reject─▶ rejected     └──────────claim──────────┘         │        └──▶ failed
 *        └─expire─▶ expired                                  abandon ─┴─▶ needs_review ─finish─▶ succeeded | failed
 */
export type ActionRow = typeof actions.$inferSelect
export type ActionState = Pick<ActionRow, 'status' | 'expiresAt' | 'leaseExpiresAt' | 'verificationState'>

/** What running an action came to. */
export interface Outcome {
  status: 'succeeded' | 'failed'
  result: Record<string, unknown> | null
  error: string | null
  attempts: number
}

export type VerificationVerdict = 'recovered' | 'not_recovered' | 'skipped'

export type ActionEvent =
  | { type: 'approve'; by: string }
  | { type: 'reject'; by: string; reason: string }
  /** nobody approved it before its deadline */
  | { type: 'expire' }
  /** its job is in the queue */
  | { type: 'dispatch' }
  /** a worker takes it, with a lease */
  | { type: 'claim'; leaseUntil: Date }
  /** the side effect ran; a lease that ran out meanwhile (needs_review) learns the outcome after all */
  | { type: 'finish'; outcome: Outcome; finishedAt: Date }
  /** its worker vanished mid-run: the outcome is unknown, so a person decides */
  | { type: 'abandon' }
  | { type: 'verify'; verdict: VerificationVerdict; details: Record<string, unknown> }

export interface ActionChange {
  set: Partial<ActionRow>
  /** the audit row's action; null for the queue hand-off, plumbing that decides nothing */
  audit: string | null
}

/** The statuses each event starts from. */
export const ACTION_FROM: Record<ActionEvent['type'], ActionStatus[]> = {
  approve: ['pending_approval'],
  reject: ['pending_approval'],
  expire: ['pending_approval'],
  dispatch: ['approved'],
  claim: ['approved', 'queued'],
  finish: ['running', 'needs_review'],
  abandon: ['running'],
  verify: ['succeeded']
}

const VERB: Partial<Record<ActionEvent['type'], string>> = { approve: 'approved', reject: 'rejected' }

/** Applies one event; throws InvalidTransitionError when the action's state does not allow it. */
export function transition(state: ActionState, event: ActionEvent, now: Date): ActionChange {
  const refuse = (why: string): never => {
    throw new InvalidTransitionError(VERB[event.type] ? `the action cannot be ${VERB[event.type]}: ${why}` : `cannot ${event.type} the action: ${why}`)
  }
  if (!ACTION_FROM[event.type].includes(state.status)) refuse(`it is ${state.status}`)
  switch (event.type) {
    case 'approve':
      // An approval must land before the deadline; the expiry sweep may not have run yet.
      if (state.expiresAt <= now) refuse('it expired')
      return { set: { status: 'approved', approvedBy: event.by, approvedAt: now, statusReason: null }, audit: 'action.approved' }
    case 'reject':
      if (state.expiresAt <= now) refuse('it expired')
      return { set: { status: 'rejected', rejectedBy: event.by, statusReason: event.reason, finishedAt: now }, audit: 'action.rejected' }
    case 'expire':
      if (state.expiresAt > now) refuse('it has not expired')
      return { set: { status: 'expired', finishedAt: now, statusReason: 'not approved in time' }, audit: 'action.expired' }
    case 'dispatch':
      return { set: { status: 'queued', dispatchedAt: now }, audit: null }
    case 'claim':
      return { set: { status: 'running', startedAt: now, leaseExpiresAt: event.leaseUntil }, audit: 'action.started' }
    case 'finish':
      return {
        set: {
          status: event.outcome.status,
          result: event.outcome.result,
          error: event.outcome.error,
          attempts: event.outcome.attempts,
          finishedAt: event.finishedAt,
          leaseExpiresAt: null,
          verificationState: event.outcome.status === 'succeeded' ? 'pending' : 'skipped'
        },
        audit: `action.${event.outcome.status}`
      }
    case 'abandon':
      if (!state.leaseExpiresAt || state.leaseExpiresAt > now) refuse('its lease has not run out')
      return {
        set: {
          status: 'needs_review',
          statusReason: 'the run lost its worker before recording an outcome; it is not retried automatically',
          leaseExpiresAt: null
        },
        audit: 'action.needs_review'
      }
    case 'verify':
      if (state.verificationState !== 'pending') refuse(`it was verified already (${state.verificationState})`)
      return { set: { verificationState: event.verdict, verification: { ...event.details, checkedAt: now.toISOString() } }, audit: 'action.verified' }
  }
}
