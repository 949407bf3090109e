import { v7 as uuidv7 } from 'uuid'
import type { Database, Executor } from '../../db/client.js'
import type { Role } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { Clock } from '../../lib/clock.js'
import type { Principal } from '../../lib/context.js'
import { hashPassword, randomSecret, sha256, verifyPassword } from '../../lib/crypto.js'
import { findKey } from '../api-keys/repository.js'
import { recordAudit } from '../audit/repository.js'
import { PLAN_LIMITS } from '../subscription/plans.js'
import { insertUser, presentUser } from '../users/repository.js'
import { conflictOnTakenEmail } from '../users/service.js'
import {
  findOrganization,
  findSession,
  findUser,
  findUserByEmail,
  insertOrganization,
  insertSession,
  revokeSession,
  rotateSession
} from './repository.js'
import { newRefreshToken, parseRefreshToken, type SessionGrant } from './tokens.js'

export interface AuthDeps {
  db: Database
  clock: Clock
  refreshTtlSeconds: number
  /** after a revocation commits: ends the session's access tokens in every process (sessions.ts) */
  announceRevoked: (sessionId: string) => Promise<void>
}

const INVALID_LOGIN = 'email or password is incorrect'
const INVALID_REFRESH = 'refresh token is invalid, expired or already used'

/**
 * Login sessions: signup, login, refresh-token rotation and logout, each audited. Sessions are granted as
 * claims and a refresh token; the HTTP layer signs the access token. A revoked session's access tokens
 * fail on the next request in every process: the revocation is announced after the commit, and again
 * when it is repeated (a logout retried after a 503, a stolen token replayed once more).
 */
export function createAuthService(deps: AuthDeps) {
  const expiry = (now: Date) => new Date(now.getTime() + deps.refreshTtlSeconds * 1000)

  /** Starts a login session; the caller audits it in the same transaction. */
  async function openSession(tx: Executor, user: { id: string; organizationId: string; role: Role }) {
    const sessionId = uuidv7()
    const refresh = newRefreshToken(sessionId)
    await insertSession(tx, {
      id: sessionId,
      userId: user.id,
      organizationId: user.organizationId,
      refreshTokenHash: refresh.hash,
      expiresAt: expiry(deps.clock.now())
    })
    const grant: SessionGrant = {
      claims: { sub: user.id, org: user.organizationId, role: user.role, sid: sessionId },
      refreshToken: refresh.token
    }
    return { sessionId, grant }
  }

  async function signup(input: { email: string; password: string; organization: string }, requestId: string) {
    const passwordHash = await hashPassword(input.password)
    return deps.db
      .transaction(async (tx) => {
        const { organization, subscription } = await insertOrganization(tx, {
          name: input.organization,
          webhookSecret: randomSecret(32)
        })
        const user = await insertUser(tx, { organizationId: organization.id, email: input.email, passwordHash, role: 'owner' })
        const session = await openSession(tx, user)
        const org = { id: organization.id, name: organization.name, plan: subscription.plan }
        await recordAudit(
          tx,
          { organizationId: organization.id, actor: { type: 'user', id: user.id }, requestId },
          { action: 'organization.created', resourceType: 'organization', resourceId: org.id, after: org },
          { action: 'user.created', resourceType: 'user', resourceId: user.id, after: presentUser(user) },
          { action: 'session.created', resourceType: 'session', resourceId: session.sessionId, after: { userId: user.id } }
        )
        return { user: presentUser(user), organization: org, session: session.grant }
      })
      .catch(conflictOnTakenEmail)
  }

  async function login(input: { email: string; password: string }, requestId: string) {
    const user = await findUserByEmail(deps.db, input.email)
    // Always run scrypt, so an unknown email and a wrong password take the same time and answer.
    const ok = await verifyPassword(input.password, user?.passwordHash)
    if (!user || !ok) throw errors.unauthorized(INVALID_LOGIN)
    return deps.db.transaction(async (tx) => {
      const session = await openSession(tx, user)
      await recordAudit(
        tx,
        { organizationId: user.organizationId, actor: { type: 'user', id: user.id }, requestId },
        { action: 'session.created', resourceType: 'session', resourceId: session.sessionId, after: { userId: user.id } }
      )
      return session.grant
    })
  }

  async function refresh(refreshToken: string, requestId: string): Promise<SessionGrant> {
    const sessionId = parseRefreshToken(refreshToken)
    if (!sessionId) throw errors.unauthorized(INVALID_REFRESH)
    const presentedHash = sha256(refreshToken)
    const next = newRefreshToken(sessionId)
    const now = deps.clock.now()

    const rotated = await deps.db.transaction(async (tx) => {
      const session = await rotateSession(tx, sessionId, presentedHash, next.hash, expiry(now), now)
      if (!session) return undefined
      const user = await findUser(tx, session.organizationId, session.userId)
      await recordAudit(
        tx,
        { organizationId: session.organizationId, actor: { type: 'user', id: session.userId }, requestId },
        { action: 'session.refreshed', resourceType: 'session', resourceId: session.id }
      )
      return { session, user: user! }
    })
    if (rotated) {
      const { session, user } = rotated
      return { claims: { sub: user.id, org: session.organizationId, role: user.role, sid: session.id }, refreshToken: next.token }
    }

    // Not the current token of a live session. If it is one of the session's former tokens, it is being
    // replayed: someone holds a stolen copy, so the whole session goes. Any other token (a session id with
    // made-up secret, a token older than the session remembers) is only refused: knowing a session's id
    // must not be enough to end it.
    const replayed = await deps.db.transaction(async (tx) => {
      const session = await findSession(tx, sessionId)
      if (!session || !session.retiredTokenHashes.includes(presentedHash)) return false
      // Already revoked (a logout, an earlier replay): announced again below, audited once.
      if (session.revokedAt || !(await revokeSession(tx, session.id, 'refresh_token_reuse', now))) return true
      await recordAudit(
        tx,
        { organizationId: session.organizationId, actor: { type: 'user', id: session.userId }, requestId },
        {
          action: 'session.revoked',
          resourceType: 'session',
          resourceId: session.id,
          after: { reason: 'refresh_token_reuse' }
        }
      )
      return true
    })
    if (replayed) await deps.announceRevoked(sessionId)
    throw errors.unauthorized(INVALID_REFRESH)
  }

  async function logout(refreshToken: string, requestId: string) {
    const sessionId = parseRefreshToken(refreshToken)
    if (!sessionId) return
    const ended = await deps.db.transaction(async (tx) => {
      const session = await findSession(tx, sessionId)
      if (!session || session.refreshTokenHash !== sha256(refreshToken)) return false
      if (session.revokedAt || !(await revokeSession(tx, session.id, 'logout', deps.clock.now()))) return true
      await recordAudit(
        tx,
        { organizationId: session.organizationId, actor: { type: 'user', id: session.userId }, requestId },
        { action: 'session.revoked', resourceType: 'session', resourceId: session.id, after: { reason: 'logout' } }
      )
      return true
    })
    if (ended) await deps.announceRevoked(sessionId)
  }

  /** The caller as `GET /me` shows it: user or API key, organization, role, plan and limits. */
  async function describe(principal: Principal) {
    const organization = await findOrganization(deps.db, principal.organizationId)
    if (!organization) throw errors.unauthorized('the organization of this credential no longer exists')
    let user = null
    let apiKey = null
    if (principal.kind === 'user') {
      const row = await findUser(deps.db, principal.organizationId, principal.id)
      if (!row) throw errors.unauthorized('the user of this token no longer exists')
      user = presentUser(row)
    } else {
      const row = await findKey(deps.db, principal.organizationId, principal.id)
      if (!row) throw errors.unauthorized('API key is invalid or revoked')
      apiKey = { id: row.id, name: row.name, role: row.role }
    }
    return { user, apiKey, organization, role: principal.role, plan: organization.plan, limits: PLAN_LIMITS[organization.plan] }
  }

  return { signup, login, refresh, logout, describe }
}
