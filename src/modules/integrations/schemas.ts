import Type, { type Static } from 'typebox'

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

export const PrometheusSettings = Type.Object({
  activeSeries: Type.Integer({ description: 'series of the organization with a sample in the last hour' }),
  activeSeriesLimit: Type.Integer({ description: 'the plan\'s limit: samples of new series past it are refused' }),
  extraLabels: Type.Array(Type.String(), { maxItems: 0, description: 'retired (always empty): every label names a distinct series' })
})
