import Type, { type Static } from 'typebox'
import { LABEL_NAME } from './mapping.js'

export const AlertmanagerAlert = Type.Object(
  {
    status: Type.Enum(['firing', 'resolved'] as const),
    labels: Type.Record(Type.String(), Type.String()),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
    startsAt: Type.Optional(Type.String()),
    endsAt: Type.Optional(Type.String()),
    generatorURL: Type.Optional(Type.String()),
    fingerprint: Type.String({ minLength: 1, maxLength: 128 })
  },
  // Alertmanager owns this format and may add fields: unknown ones are ignored here, not refused.
  { additionalProperties: true }
)
export const AlertmanagerBody = Type.Object(
  { version: Type.String(), status: Type.Optional(Type.String()), alerts: Type.Array(AlertmanagerAlert, { maxItems: 1000 }) },
  { additionalProperties: true }
)
export type AlertmanagerAlert = Static<typeof AlertmanagerAlert>

export const PrometheusSettings = Type.Object(
  {
    extraLabels: Type.Array(Type.String({ pattern: LABEL_NAME }), {
      maxItems: 5,
      uniqueItems: true,
      description: 'labels besides __name__ that name a distinct metric, e.g. ["instance"]'
    })
  },
  { additionalProperties: false }
)
