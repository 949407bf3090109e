import type { Database } from '../../db/client.js'
import type { PageRequest } from '../../db/keyset.js'
import { listAudit } from './repository.js'

export function createAuditService(deps: { db: Database }) {
  /** A page of the audit trail, newest first, optionally of one resource type or resource. */
  const list = (organizationId: string, filter: { resourceType?: string; resourceId?: string }, page: PageRequest) =>
    listAudit(deps.db, organizationId, { ...filter, ...page })

  return { list }
}
