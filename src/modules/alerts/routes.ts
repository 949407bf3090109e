import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { SEVERITIES } from '../../db/schema/index.js'
import { problemResponses } from '../../errors.js'
import { changeContext } from '../../lib/context.js'
import { Nullable } from '../../lib/schemas.js'
import { MAX_DETAILS_BYTES, MAX_DETAILS_KEYS } from '../incidents/lifecycle.js'
import { IncidentSchema } from '../incidents/schemas.js'
import { SERVICE_NAME_PATTERN } from '../services/schemas.js'

const AlertBody = Type.Object(
  {
    service: Type.String({ pattern: SERVICE_NAME_PATTERN }),
    dedupKey: Type.String({ minLength: 1, maxLength: 256 }),
    action: Type.Enum(['trigger', 'resolve'] as const),
    title: Type.String({ minLength: 1, maxLength: 500 }),
    severity: Type.Enum(SEVERITIES),
    details: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), { maxProperties: MAX_DETAILS_KEYS }))
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
        description:
          `One alert (no batch). A resolve closes the open incident with the key, whatever its service, and never registers the service it names; with no open incident it answers 202 with incident null. A trigger for an unknown service registers it within the plan (402 \`plan_limit\` past it). Details over ${MAX_DETAILS_KEYS} keys or ${MAX_DETAILS_BYTES} bytes of JSON are refused (413 \`details_too_large\`); a trigger's details merge into the incident's (its keys win), keeping the older keys only while the whole stays within that bound. A trigger that changes nothing (same title, no escalation, details already as merged) writes nothing and answers the incident as it is.`,
        body: AlertBody,
        response: { 202: Type.Object({ incident: Nullable(IncidentSchema) }), ...problemResponses(400, 401, 402, 403, 413, 429, 503) }
      }
    },
    async (request, reply) => {
      const applied = await alerts.apply(changeContext(request), request.body)
      if (applied.outcome === 'refused') throw applied.error
      return reply.code(202).send({ incident: applied.incident })
    }
  )
}
