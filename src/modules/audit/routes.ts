import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { problemResponses } from '../../errors.js'
import { Page, PageQuery, pageRequest, toPage } from '../../lib/pagination.js'
import { AuditEntrySchema, presentAudit } from './schemas.js'

export const auditRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { audit } = app.services
  app.get(
    '/audit',
    {
      config: { minRole: 'admin' },
      schema: {
        tags: ['audit'],
        operationId: 'listAudit',
        summary: 'The audit trail, newest first',
        querystring: Type.Object(
          {
            ...PageQuery,
            resourceType: Type.Optional(Type.String({ pattern: '^[a-z_]{1,40}$' })),
            resourceId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 }))
          },
          { additionalProperties: false }
        ),
        response: { 200: Page(AuditEntrySchema), ...problemResponses(400, 401, 403, 429) }
      }
    },
    async (request) => {
      const { resourceType, resourceId } = request.query
      const rows = await audit.list(request.principal.organizationId, { resourceType, resourceId }, pageRequest(request.query))
      return toPage(rows, request.query.limit, presentAudit)
    }
  )
}
