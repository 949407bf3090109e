import type { Role } from '../../db/schema/index.js'
import { randomSecret, sha256 } from '../../lib/crypto.js'

/** What an access token (JWT) says about its holder. */
export interface AccessTokenClaims {
  sub: string
  org: string
  role: Role
  sid: string
}

/** A login session's credentials before the access token is signed: its claims and its refresh token. */
export interface SessionGrant {
  claims: AccessTokenClaims
  refreshToken: string
}

/** A refresh token names its session, so a reused (already rotated) token can revoke the whole session. */
export function newRefreshToken(sessionId: string) {
  const token = `${sessionId}.${randomSecret(32)}`
  return { token, hash: sha256(token) }
}

export const isSessionId = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f-]{36}$/.test(value)

export function parseRefreshToken(token: string) {
  const [sessionId, secret, extra] = token.split('.')
  if (!sessionId || !secret || extra !== undefined || !isSessionId(sessionId)) return undefined
  return sessionId
}
