import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { SEVERITIES } from '../../db/schema/index.js'
import { problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { Nullable } from '../../lib/schemas.js'
import { IncidentSchema } from '../incidents/schemas.js'
import { SERVICE_NAME_PATTERN } from '../services/schemas.js'

const AlertBody = Type.Object(
  {
    service: Type.String({ pattern: SERVICE_NAME_PATTERN }),
    dedupKey: Type.String({ minLength: 1, maxLength: 256 }),
    action: Type.Enum(['trigger', 'resolve'] as const),
    title: Type.String({ minLength: 1, maxLength: 500 }),
    severity: Type.Enum(SEVERITIES),
    details: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), { maxProperties: 100 }))
  },
  { additionalProperties: false }
)

export const alertRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { alerts } = app.services

  app.post(
    '/alerts',
    {
      config: { minRole: 'agent', idempotent: {} },
      bodyLimit: 64 * 1024,
      schema: {
        tags: ['ingestion'],
        operationId: 'ingestAlert',
        summary: 'Trigger or resolve an external alert, deduplicated by dedupKey',
        description: 'A resolve with no open incident for the key answers 202 with incident null.',
        body: AlertBody,
        response: { 202: Type.Object({ incident: Nullable(IncidentSchema) }), ...problemResponses(400, 401, 402, 403, 429, 503) }
      }
    },
    async (request, reply) => reply.code(202).send({ incident: await alerts.handle(changeContext(request), request.body) })
  )
}
