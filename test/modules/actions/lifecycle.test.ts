import { describe, expect, it } from 'vitest'
import { ACTION_STATUSES, type ActionStatus } from '../../../src/db/schema/index.js'
import { DomainError, InvalidTransitionError } from '../../../src/lib/domain-errors.js'
import {
  ACTION_FROM,
  transition,
  type ActionEvent,
  type ActionRow,
  type ActionState,
  type Outcome,
  type VerificationVerdict
} from '../../../src/modules/actions/lifecycle.js'

/** A fixed clock: every instant is NOW plus or minus some milliseconds. */
const NOW = new Date('2025-03-01T12:00:00.000Z')
const ms = (offset: number) => new Date(NOW.getTime() + offset)
const HOUR = 3_600_000

function action(status: ActionStatus, overrides: Partial<ActionState> = {}): ActionState {
  return Object.freeze({ status, expiresAt: ms(HOUR), leaseExpiresAt: null, verificationState: 'pending', ...overrides })
}

/** The thrown error, for asserting its class and message together. */
function thrown(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidTransitionError)
    expect(err).toBeInstanceOf(DomainError)
    return err as Error
  }
  throw new Error('expected a throw')
}

const SUCCESS: Outcome = { status: 'succeeded', result: { restarted: 3 }, error: null, attempts: 2 }
const FAILURE: Outcome = { status: 'failed', result: null, error: 'webhook answered 500', attempts: 3 }
const FINISHED_AT = ms(-5_000)
const LEASE_UNTIL = ms(60_000)

const EVENTS: Record<ActionEvent['type'], ActionEvent> = {
  approve: { type: 'approve', by: 'user:alice' },
  reject: { type: 'reject', by: 'user:alice', reason: 'too risky' },
  expire: { type: 'expire' },
  dispatch: { type: 'dispatch' },
  claim: { type: 'claim', leaseUntil: LEASE_UNTIL },
  finish: { type: 'finish', outcome: SUCCESS, finishedAt: FINISHED_AT },
  abandon: { type: 'abandon' },
  verify: { type: 'verify', verdict: 'recovered', details: { metrics: [] } }
}

/** The statuses each event starts from, written out independently of ACTION_FROM. */
const EXPECTED_FROM: Record<ActionEvent['type'], ActionStatus[]> = {
  approve: ['pending_approval'],
  reject: ['pending_approval'],
  expire: ['pending_approval'],
  dispatch: ['approved'],
  claim: ['approved', 'queued'],
  finish: ['running', 'needs_review'],
  abandon: ['running'],
  verify: ['succeeded']
}

/** Where each event leads (verify leaves the status alone) and the audit row it writes. */
const EXPECTED_TO: Record<ActionEvent['type'], { status: ActionStatus | undefined; audit: string | null }> = {
  approve: { status: 'approved', audit: 'action.approved' },
  reject: { status: 'rejected', audit: 'action.rejected' },
  expire: { status: 'expired', audit: 'action.expired' },
  dispatch: { status: 'queued', audit: null },
  claim: { status: 'running', audit: 'action.started' },
  finish: { status: 'succeeded', audit: 'action.succeeded' },
  abandon: { status: 'needs_review', audit: 'action.needs_review' },
  verify: { status: undefined, audit: 'action.verified' }
}

/** A state of the given status that passes the event's own guards (deadline, lease, verification). */
function admissible(type: ActionEvent['type'], status: ActionStatus): ActionState {
  switch (type) {
    case 'expire':
      return action(status, { expiresAt: ms(-1) })
    case 'abandon':
      return action(status, { leaseExpiresAt: ms(-1) })
    default:
      return action(status)
  }
}

const PAST: Partial<Record<ActionEvent['type'], string>> = { approve: 'approved', reject: 'rejected' }
const refusal = (type: ActionEvent['type'], why: string) => (PAST[type] ? `the action cannot be ${PAST[type]}: ${why}` : `cannot ${type} the action: ${why}`)

describe('action lifecycle: every event from every status', () => {
  it('there are nine statuses', () => {
    expect(ACTION_STATUSES).toHaveLength(9)
  })

  it('ACTION_FROM is the documented table', () => {
    expect(ACTION_FROM).toEqual(EXPECTED_FROM)
  })

  const cases = (Object.keys(EXPECTED_FROM) as ActionEvent['type'][]).flatMap((type) =>
    ACTION_STATUSES.map((status) => ({ type, status, allowed: EXPECTED_FROM[type].includes(status) }))
  )

  it.each(cases)('$type from $status (allowed: $allowed)', ({ type, status, allowed }) => {
    const run = () => transition(admissible(type, status), EVENTS[type], NOW)
    if (allowed) {
      const change = run()
      expect(change.set.status).toBe(EXPECTED_TO[type].status)
      expect(change.audit).toBe(EXPECTED_TO[type].audit)
    } else {
      expect(thrown(run).message).toBe(refusal(type, `it is ${status}`))
    }
  })

  it.each([
    ['approve', 'expired', 'the action cannot be approved: it is expired'],
    ['approve', 'rejected', 'the action cannot be approved: it is rejected'],
    ['reject', 'approved', 'the action cannot be rejected: it is approved'],
    ['dispatch', 'queued', 'cannot dispatch the action: it is queued'],
    ['claim', 'running', 'cannot claim the action: it is running'],
    ['finish', 'succeeded', 'cannot finish the action: it is succeeded'],
    ['abandon', 'needs_review', 'cannot abandon the action: it is needs_review'],
    ['verify', 'failed', 'cannot verify the action: it is failed']
  ] as const)('%s from %s: "%s"', (type, status, message) => {
    expect(thrown(() => transition(admissible(type, status), EVENTS[type], NOW)).message).toBe(message)
  })

  it('the status check comes before the deadline check', () => {
    const expired = action('expired', { expiresAt: ms(-HOUR) })
    expect(thrown(() => transition(expired, EVENTS.approve, NOW)).message).toBe('the action cannot be approved: it is expired')
  })
})

describe('approve', () => {
  it('approves before the deadline', () => {
    const change = transition(action('pending_approval', { expiresAt: ms(1) }), { type: 'approve', by: 'user:alice' }, NOW)
    expect(change).toEqual({
      set: { status: 'approved', approvedBy: 'user:alice', approvedAt: NOW, statusReason: null },
      audit: 'action.approved'
    })
  })

  it.each([
    ['at', 0],
    ['after', -1],
    ['long after', -HOUR]
  ])('is refused %s the deadline: it expired', (_label, offset) => {
    const state = action('pending_approval', { expiresAt: ms(offset) })
    expect(thrown(() => transition(state, EVENTS.approve, NOW)).message).toBe('the action cannot be approved: it expired')
  })
})

describe('reject', () => {
  it('rejects before the deadline, with the reason and a finish time', () => {
    const change = transition(action('pending_approval', { expiresAt: ms(1) }), { type: 'reject', by: 'user:alice', reason: 'too risky' }, NOW)
    expect(change).toEqual({
      set: { status: 'rejected', rejectedBy: 'user:alice', statusReason: 'too risky', finishedAt: NOW },
      audit: 'action.rejected'
    })
  })

  it.each([0, -1])('is refused at or after the deadline (offset %i ms): it expired', (offset) => {
    const state = action('pending_approval', { expiresAt: ms(offset) })
    expect(thrown(() => transition(state, EVENTS.reject, NOW)).message).toBe('the action cannot be rejected: it expired')
  })
})

describe('expire', () => {
  it.each([0, -1, -HOUR])('expires at or after the deadline (offset %i ms)', (offset) => {
    const change = transition(action('pending_approval', { expiresAt: ms(offset) }), EVENTS.expire, NOW)
    expect(change).toEqual({ set: { status: 'expired', finishedAt: NOW, statusReason: 'not approved in time' }, audit: 'action.expired' })
  })

  it.each([1, HOUR])('is refused before the deadline (offset %i ms)', (offset) => {
    const state = action('pending_approval', { expiresAt: ms(offset) })
    expect(thrown(() => transition(state, EVENTS.expire, NOW)).message).toBe('cannot expire the action: it has not expired')
  })
})

describe('dispatch', () => {
  it('queues an approved action without an audit row', () => {
    expect(transition(action('approved'), EVENTS.dispatch, NOW)).toEqual({ set: { status: 'queued', dispatchedAt: NOW }, audit: null })
  })
})

describe('claim', () => {
  it.each(['approved', 'queued'] as const)('starts a %s action with a lease', (status) => {
    expect(transition(action(status), { type: 'claim', leaseUntil: LEASE_UNTIL }, NOW)).toEqual({
      set: { status: 'running', startedAt: NOW, leaseExpiresAt: LEASE_UNTIL },
      audit: 'action.started'
    })
  })
})

describe('finish', () => {
  it.each(['running', 'needs_review'] as const)('a success from %s: verification pending', (status) => {
    const change = transition(action(status, { leaseExpiresAt: ms(30_000), verificationState: 'skipped' }), EVENTS.finish, NOW)
    expect(change).toEqual({
      set: {
        status: 'succeeded',
        result: { restarted: 3 },
        error: null,
        attempts: 2,
        finishedAt: FINISHED_AT,
        leaseExpiresAt: null,
        verificationState: 'pending'
      },
      audit: 'action.succeeded'
    })
  })

  it.each(['running', 'needs_review'] as const)('a failure from %s: verification skipped', (status) => {
    const change = transition(action(status), { type: 'finish', outcome: FAILURE, finishedAt: FINISHED_AT }, NOW)
    expect(change).toEqual({
      set: {
        status: 'failed',
        result: null,
        error: 'webhook answered 500',
        attempts: 3,
        finishedAt: FINISHED_AT,
        leaseExpiresAt: null,
        verificationState: 'skipped'
      },
      audit: 'action.failed'
    })
  })

  it('records when the run finished, not when the outcome arrived', () => {
    expect(transition(action('needs_review'), EVENTS.finish, NOW).set.finishedAt).toBe(FINISHED_AT)
  })
})

describe('abandon', () => {
  it.each([0, -1, -HOUR])('flags a run whose lease ran out (offset %i ms) for review', (offset) => {
    const change = transition(action('running', { leaseExpiresAt: ms(offset) }), EVENTS.abandon, NOW)
    expect(change.set).toEqual({
      status: 'needs_review',
      statusReason: 'the run lost its worker before recording an outcome; it is not retried automatically',
      leaseExpiresAt: null
    })
    expect(change.audit).toBe('action.needs_review')
  })

  it.each([
    ['a live lease', ms(1)],
    ['a lease far ahead', ms(HOUR)],
    ['no lease', null]
  ] as const)('is refused with %s', (_label, leaseExpiresAt) => {
    const state = action('running', { leaseExpiresAt })
    expect(thrown(() => transition(state, EVENTS.abandon, NOW)).message).toBe('cannot abandon the action: its lease has not run out')
  })
})

describe('verify', () => {
  it.each(['recovered', 'not_recovered', 'skipped'] as const)('records the %s verdict with checkedAt = now', (verdict: VerificationVerdict) => {
    const change = transition(action('succeeded'), { type: 'verify', verdict, details: { anomalies: [{ metric: 'cpu' }] } }, NOW)
    expect(change).toEqual({
      set: { verificationState: verdict, verification: { anomalies: [{ metric: 'cpu' }], checkedAt: '2025-03-01T12:00:00.000Z' } },
      audit: 'action.verified'
    })
  })

  it('checkedAt is the clock’s, not one the details carry', () => {
    const change = transition(action('succeeded'), { type: 'verify', verdict: 'skipped', details: { checkedAt: 'yesterday' } }, NOW)
    expect(change.set.verification).toEqual({ checkedAt: NOW.toISOString() })
  })

  it.each(['recovered', 'not_recovered', 'skipped'] as const)('is refused when verification is already %s', (verificationState) => {
    const state = action('succeeded', { verificationState })
    expect(thrown(() => transition(state, EVENTS.verify, NOW)).message).toBe(`cannot verify the action: it was verified already (${verificationState})`)
  })
})

describe('a simulated clock, in memory', () => {
  /** Applies each step's change to the row, as the repository would, and collects the audit rows. */
  const run = (start: ActionState, steps: [number, ActionEvent][]) => {
    let state: ActionState & Partial<ActionRow> = start
    const audits: (string | null)[] = []
    for (const [offset, event] of steps) {
      const change = transition(state, event, ms(offset))
      audits.push(change.audit)
      state = { ...state, ...change.set }
    }
    return { state, audits }
  }

  it('pending → approved → queued → running → (lease lost) needs_review → succeeded → verified', () => {
    const { state, audits } = run(action('pending_approval', { expiresAt: ms(10 * 60_000) }), [
      [1_000, { type: 'approve', by: 'user:alice' }],
      [1_100, { type: 'dispatch' }],
      [2_000, { type: 'claim', leaseUntil: ms(32_000) }],
      [32_000, { type: 'abandon' }],
      [40_000, { type: 'finish', outcome: SUCCESS, finishedAt: ms(20_000) }],
      [320_000, { type: 'verify', verdict: 'recovered', details: {} }]
    ])
    expect(state).toMatchObject({
      status: 'succeeded',
      approvedBy: 'user:alice',
      approvedAt: ms(1_000),
      dispatchedAt: ms(1_100),
      startedAt: ms(2_000),
      finishedAt: ms(20_000),
      leaseExpiresAt: null,
      result: { restarted: 3 },
      attempts: 2,
      verificationState: 'recovered',
      verification: { checkedAt: ms(320_000).toISOString() }
    })
    expect(audits).toEqual(['action.approved', null, 'action.started', 'action.needs_review', 'action.succeeded', 'action.verified'])
  })

  it('an unapproved proposal expires at its deadline, and is then terminal', () => {
    const { state } = run(action('pending_approval', { expiresAt: ms(60_000) }), [[60_000, { type: 'expire' }]])
    expect(state.status).toBe('expired')
    for (const event of Object.values(EVENTS)) {
      expect(() => transition(state, event, ms(61_000))).toThrow(InvalidTransitionError)
    }
  })
})
