import { AppError, errors } from '../../errors.js'
import type { ChangeContext } from '../../lib/context.js'
import { detailsOverBound } from '../incidents/lifecycle.js'
import type { presentIncident } from '../incidents/repository.js'
import type { AlertInput, IncidentsService } from '../incidents/service.js'
import type { ServiceResolver } from '../services/resolver.js'

/** An external alert: the service it names, and what the incident with its dedup key should do. */
export interface ServiceAlert extends AlertInput {
  service: string
}

/**
 * What became of one alert: applied to its incident (`changed` false for a repeat that said nothing new),
 * ignored (a resolve with nothing open under its key), or refused with the error a lone alert answers.
 */
export type AlertOutcome =
  | { outcome: 'applied'; incident: ReturnType<typeof presentIncident>; changed: boolean }
  | { outcome: 'ignored'; code: 'no_open_incident'; incident: null }
  | { outcome: 'refused'; error: AppError }

/**
 * External alerts (`POST /v1/alerts`, Alertmanager), one at a time: a trigger's service is resolved
 * (registered within the plan), then the incident lifecycle deduplicates by key within the organization.
 * A resolve goes by its key alone, so it never registers the service it names.
 */
export function createAlertService(deps: {
  resolver: Pick<ServiceResolver, 'resolve'>
  incidents: Pick<IncidentsService, 'triggerAlert' | 'resolveAlert'>
}) {
  async function apply(ctx: ChangeContext, input: ServiceAlert, source: 'alert' | 'alertmanager' = 'alert'): Promise<AlertOutcome> {
    if (input.action === 'resolve') {
      const incident = await deps.incidents.resolveAlert(ctx, input.dedupKey)
      return incident ? { outcome: 'applied', incident, changed: true } : { outcome: 'ignored', code: 'no_open_incident', incident: null }
    }
    // Checked before the service is resolved: a refused alert registers nothing.
    const oversize = detailsOverBound(input.details)
    if (oversize) return { outcome: 'refused', error: new AppError(413, 'details_too_large', oversize) }
    const resolution = (await deps.resolver.resolve(ctx, [input.service])).get(input.service)!
    if ('rejected' in resolution) return { outcome: 'refused', error: errors.planLimit(resolution.detail) }
    return { outcome: 'applied', ...(await deps.incidents.triggerAlert(ctx, resolution, input, source)) }
  }
  return { apply }
}
export type AlertService = ReturnType<typeof createAlertService>
