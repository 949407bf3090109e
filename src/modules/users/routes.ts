import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { errors, problemResponses } from '../../errors.js'
import { changeContext, roleAtLeast } from '../../lib/context.js'
import { Page, PageQuery, pageRequest, toPage } from '../../lib/pagination.js'
import { Email, Password, RoleSchema } from '../../lib/schemas.js'
import { UserSchema } from './schemas.js'
import { presentUser } from './repository.js'

const CreateUserBody = Type.Object({ email: Email, password: Password, role: RoleSchema }, { additionalProperties: false })

export const userRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { users } = app.services
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
      return reply.code(201).send(presentUser(await users.create(changeContext(request), request.body)))
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
      const rows = await users.list(request.principal.organizationId, pageRequest(request.query))
      return toPage(rows, request.query.limit, presentUser)
    }
  )
}
