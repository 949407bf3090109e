import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errors, problemResponses } from '../../errors.js'
import { changeContext, roleAtLeast } from '../../lib/context.js'
import { hashPassword } from '../../lib/crypto.js'
import { decodeCursor, Page, PageQuery, toPage } from '../../lib/pagination.js'
import { Email, Password, RoleSchema } from '../../lib/schemas.js'
import { recordAudit } from '../audit/repository.js'
import { UserSchema } from '../auth/schemas.js'
import { insertUser, listUsers, presentUser } from './repository.js'

const CreateUserBody = Type.Object({ email: Email, password: Password, role: RoleSchema }, { additionalProperties: false })

export const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['users']

  app.post(
    '/users',
    {
      config: { minRole: 'admin', idempotent: {} },
      schema: {
        tags,
        operationId: 'createUser',
        summary: 'Add a user to the organization (role not above your own)',
        body: CreateUserBody,
        response: { 201: UserSchema, ...problemResponses(400, 401, 403, 409, 429) }
      }
    },
    async (request, reply) => {
      const { principal } = request
      if (!roleAtLeast(principal.role, request.body.role)) {
        throw errors.forbidden(`you cannot create a user with a role above your own (${principal.role})`)
      }
      const passwordHash = await hashPassword(request.body.password)
      const user = await app.db.transaction(async (tx) => {
        const row = await insertUser(tx, {
          organizationId: principal.organizationId,
          email: request.body.email,
          passwordHash,
          role: request.body.role
        })
        await recordAudit(
          tx,
          changeContext(request),
          { action: 'user.created', resourceType: 'user', resourceId: row.id, after: presentUser(row) }
        )
        return row
      })
      return reply.code(201).send(presentUser(user))
    }
  )

  app.get(
    '/users',
    {
      config: { minRole: 'admin' },
      schema: {
        tags,
        operationId: 'listUsers',
        summary: 'List the users of the organization',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(UserSchema), ...problemResponses(400, 401, 403, 429) }
      }
    },
    async (request) => {
      const { limit, cursor } = request.query
      const rows = await listUsers(app.db, request.principal.organizationId, limit + 1, decodeCursor(cursor))
      return toPage(rows, limit, presentUser)
    }
  )
}
