import { v7 as uuidv7 } from 'uuid'
import type { Database, Executor } from '../../db/client.js'
import type { Role } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import { hashPassword, randomSecret, sha256, verifyPassword } from '../../lib/crypto.js'
import type { AccessTokenClaims } from '../../plugins/auth.js'
import { recordAudit } from '../audit/repository.js'
import { insertUser, presentUser } from '../users/repository.js'
import {
  findSession,
  findUserByEmail,
  insertOrganization,
  insertSession,
  revokeSession,
  rotateSession
} from './repository.js'

export interface AuthDeps {
  db: Database
  signAccessToken: (claims: AccessTokenClaims) => string
  accessTtlSeconds: number
  refreshTtlSeconds: number
}

/** A refresh token names its session, so a reused (already rotated) token can revoke the whole session. */
function newRefreshToken(sessionId: string) {
  const token = `${sessionId}.${randomSecret(32)}`
  return { token, hash: sha256(token) }
}

function parseRefreshToken(token: string) {
  const [sessionId, secret, extra] = token.split('.')
  if (!sessionId || !secret || extra !== undefined || !/^[0-9a-f-]{36}$/.test(sessionId)) return undefined
  return sessionId
}

const INVALID_LOGIN = 'email or password is incorrect'
const INVALID_REFRESH = 'refresh token is invalid, expired or already used'

export function createAuthService(deps: AuthDeps) {
  const expiry = () => new Date(Date.now() + deps.refreshTtlSeconds * 1000)
  const tokens = (claims: AccessTokenClaims, refreshToken: string) => ({
    accessToken: deps.signAccessToken(claims),
    refreshToken,
    expiresIn: deps.accessTtlSeconds
  })

  /** Starts a login session and returns its token pair; the caller audits it in the same transaction. */
  async function openSession(tx: Executor, user: { id: string; organizationId: string; role: Role }) {
    const sessionId = uuidv7()
    const refresh = newRefreshToken(sessionId)
    await insertSession(tx, {
      id: sessionId,
      userId: user.id,
      organizationId: user.organizationId,
      refreshTokenHash: refresh.hash,
      expiresAt: expiry()
    })
    return {
      sessionId,
      tokens: tokens({ sub: user.id, org: user.organizationId, role: user.role, sid: sessionId }, refresh.token)
    }
  }

  async function signup(input: { email: string; password: string; organization: string }, requestId: string) {
    const passwordHash = await hashPassword(input.password)
    return deps.db.transaction(async (tx) => {
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
      return { user: presentUser(user), organization: org, ...session.tokens }
    })
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
      return session.tokens
    })
  }

  async function refresh(refreshToken: string, requestId: string) {
    const sessionId = parseRefreshToken(refreshToken)
    if (!sessionId) throw errors.unauthorized(INVALID_REFRESH)
    const presentedHash = sha256(refreshToken)
    const next = newRefreshToken(sessionId)

    const rotated = await deps.db.transaction(async (tx) => {
      const session = await rotateSession(tx, sessionId, presentedHash, next.hash, expiry())
      if (!session) return undefined
      const user = await tx.query.users.findFirst({ where: (u, { eq }) => eq(u.id, session.userId) })
      await recordAudit(
        tx,
        { organizationId: session.organizationId, actor: { type: 'user', id: session.userId }, requestId },
        { action: 'session.refreshed', resourceType: 'session', resourceId: session.id }
      )
      return { session, user: user! }
    })
    if (rotated) {
      const { session, user } = rotated
      return tokens({ sub: user.id, org: session.organizationId, role: user.role, sid: session.id }, next.token)
    }

    // Not the current token of a live session. If the session is live, this is an old token being
    // replayed: someone holds a stolen copy, so the whole session goes.
    await deps.db.transaction(async (tx) => {
      const session = await findSession(tx, sessionId)
      if (!session || session.revokedAt) return
      const revoked = await revokeSession(tx, session.id, 'refresh_token_reuse')
      if (!revoked) return
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
    })
    throw errors.unauthorized(INVALID_REFRESH)
  }

  async function logout(refreshToken: string, requestId: string) {
    const sessionId = parseRefreshToken(refreshToken)
    if (!sessionId) return
    await deps.db.transaction(async (tx) => {
      const session = await findSession(tx, sessionId)
      if (!session || session.revokedAt || session.refreshTokenHash !== sha256(refreshToken)) return
      await revokeSession(tx, session.id, 'logout')
      await recordAudit(
        tx,
        { organizationId: session.organizationId, actor: { type: 'user', id: session.userId }, requestId },
        { action: 'session.revoked', resourceType: 'session', resourceId: session.id, after: { reason: 'logout' } }
      )
    })
  }

  return { signup, login, refresh, logout }
}
