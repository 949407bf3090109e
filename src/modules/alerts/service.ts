import { errors } from '../../errors.js'
import type { ChangeContext } from '../../lib/context.js'
import type { AlertInput, IncidentsService } from '../incidents/service.js'
import type { ServiceResolver } from '../services/resolver.js'

/** An external alert: the service it names, and what the incident with its dedup key should do. */
export interface ServiceAlert extends AlertInput {
  service: string
}

/**
 * External alerts (`POST /v1/alerts`, Alertmanager): the named service is resolved (registered within the
 * plan), then the incident lifecycle deduplicates by key within the organization.
 */
export function createAlertService(deps: { resolver: Pick<ServiceResolver, 'resolve'>; incidents: Pick<IncidentsService, 'applyAlert'> }) {
  async function handle(ctx: ChangeContext, input: ServiceAlert, source: 'alert' | 'alertmanager' = 'alert') {
    const resolution = (await deps.resolver.resolve(ctx, [input.service])).get(input.service)!
    if ('rejected' in resolution) throw errors.planLimit(resolution.detail)
    return deps.incidents.applyAlert(ctx, resolution, input.service, input, source)
  }
  return { handle }
}
export type AlertService = ReturnType<typeof createAlertService>
