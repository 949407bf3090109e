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

export const AlertmanagerReply = Type.Object({
  results: Type.Array(
    Type.Object({
      index: Type.Integer({ description: 'the alert\'s position in `alerts`' }),
      fingerprint: Type.String(),
      outcome: Type.Enum(['applied', 'refused', 'ignored'] as const, {
        description: 'applied to its incident; refused on its own (see `code`); ignored: a resolve with no open incident under its fingerprint'
      }),
      code: Type.Optional(
        Type.String({
          description:
            'refused: `plan_limit` (its service would be past the plan\'s services) or `details_too_large`; ignored: `no_open_incident`; applied: `unchanged` when it repeated what the incident already said (nothing written)'
        })
      ),
      detail: Type.Optional(Type.String({ description: 'why it was refused' })),
      incidentId: Type.Union([Type.String(), Type.Null()]),
      status: Type.String({ description: 'the incident\'s status after the alert, else `no_open_incident` or `refused` (`outcome` is the field to read)' })
    })
  ),
  applied: Type.Integer(),
  refused: Type.Integer(),
  ignored: Type.Integer()
})

export const PrometheusSettings = Type.Object({
  activeSeries: Type.Integer({ description: 'series of the organization with a sample in the last hour' }),
  activeSeriesLimit: Type.Integer({ description: 'the plan\'s limit: samples of new series past it are refused' }),
  extraLabels: Type.Array(Type.String(), { maxItems: 0, description: 'retired (always empty): every label names a distinct series' })
})
