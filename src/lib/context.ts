import type { ActorType, Role } from '../db/schema/index.js'

export interface Actor {
  type: ActorType
  id: string | null
}

/** The authenticated caller: a user (JWT) or an API key. The organization always comes from here. */
export interface Principal {
  kind: 'user' | 'api_key'
  id: string
  organizationId: string
  role: Role
  /** signed in through the console's session cookie (not a Bearer header): unsafe requests need the CSRF token */
  viaCookie?: true
}

/** Who is changing what, for the audit row written in the same transaction as the change. */
export interface ChangeContext {
  organizationId: string
  actor: Actor
  requestId?: string
}

export const ROLE_RANK: Record<Role, number> = { agent: 0, operator: 1, admin: 2, owner: 3 }
export const roleAtLeast = (role: Role, minimum: Role) => ROLE_RANK[role] >= ROLE_RANK[minimum]

export const actorOf = (principal: Principal): Actor => ({ type: principal.kind, id: principal.id })
/** How an actor is written into text columns such as `resolved_by` or `requested_by`. */
export const actorRef = (actor: Actor) => actor.id ?? actor.type

export const changeContext = (request: { principal: Principal; id: string }): ChangeContext => ({
  organizationId: request.principal.organizationId,
  actor: actorOf(request.principal),
  requestId: request.id
})
