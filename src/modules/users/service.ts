import type { Database } from '../../db/client.js'
import type { PageRequest } from '../../db/keyset.js'
import type { Role } from '../../db/schema/index.js'
import { errors } from '../../errors.js'
import type { ChangeContext } from '../../lib/context.js'
import { hashPassword } from '../../lib/crypto.js'
import { AlreadyExistsError } from '../../lib/domain-errors.js'
import { recordAudit } from '../audit/repository.js'
import { insertUser, listUsers, presentUser } from './repository.js'

/** Rethrows a taken email as the caller's conflict (409), anything else as it is. */
export const conflictOnTakenEmail = (err: unknown): never => {
  throw err instanceof AlreadyExistsError ? errors.conflict('a user with this email already exists') : err
}

export function createUsersService(deps: { db: Database }) {
  async function create(ctx: ChangeContext, input: { email: string; password: string; role: Role }) {
    const passwordHash = await hashPassword(input.password)
    return deps.db
      .transaction(async (tx) => {
        const row = await insertUser(tx, { organizationId: ctx.organizationId, email: input.email, passwordHash, role: input.role })
        await recordAudit(tx, ctx, { action: 'user.created', resourceType: 'user', resourceId: row.id, after: presentUser(row) })
        return row
      })
      .catch(conflictOnTakenEmail)
  }

  const list = (organizationId: string, page: PageRequest) => listUsers(deps.db, organizationId, page)

  return { create, list }
}
