// Pending actions across services, with a live countdown to their expiry.
import { useEffect, useMemo } from 'preact/hooks'
import { get, withQuery } from '../api'
import { ActionSummary } from '../components/ActionSummary'
import { ErrorAlert, Loadable } from '../components/common'
import { isAction } from '../guards'
import { useEvents, useResource } from '../hooks'
import { Link } from '../router'
import { useSession } from '../session'
import type { Action, Page, Service } from '../types'

const MAX_PAGES = 5

async function loadPending(signal: AbortSignal): Promise<Action[]> {
  const actions: Action[] = []
  let cursor: string | null = null
  for (let page = 0; page < MAX_PAGES; page++) {
    const reply: Page<Action> = await get<Page<Action>>(withQuery('/v1/actions', { status: 'pending_approval', limit: 200, cursor }), signal)
    actions.push(...reply.items)
    cursor = reply.nextCursor
    if (!cursor) break
  }
  return actions
}

export function ApprovalsPage() {
  const session = useSession()
  const pending = useResource(loadPending, [])
  const services = useResource((signal) => get<Page<Service>>('/v1/services?limit=200', signal), [])
  const names = useMemo(() => new Map((services.data?.items ?? []).map((service) => [service.id, service.name])), [services.data])

  useEffect(() => {
    document.title = 'Approvals · Autopilot'
  }, [])

  const upsert = (action: Action) =>
    pending.setData((previous = []) => {
      const index = previous.findIndex((item) => item.id === action.id)
      if (index < 0) return action.status === 'pending_approval' ? [action, ...previous] : previous
      const next = previous.slice()
      next[index] = action
      return next
    })

  useEvents((event) => {
    if (event.type === 'reconnected') pending.reload()
    else if (event.type === 'action.updated') {
      if (isAction(event.data)) upsert(event.data)
      else pending.reload()
    }
  })

  const actions = pending.data ?? []
  const waiting = actions.filter((action) => action.status === 'pending_approval').length

  return (
    <>
      <div class="page-head">
        <h1>Approvals</h1>
        {pending.data && (
          <span class="muted" aria-live="polite">
            {waiting} waiting for approval
          </span>
        )}
      </div>
      {!session.can('operator') && <p class="alert alert-info">You can see pending actions; approving or rejecting them needs the operator role.</p>}
      <ErrorAlert error={pending.error} />
      <Loadable
        loading={pending.loading && !pending.data}
        loadingLabel="Loading pending actions…"
        empty={actions.length === 0}
        emptyText="No actions are waiting for approval."
      >
        <ul class="plain-list">
          {actions.map((action) => (
            <li key={action.id} class="card" data-testid="approval" data-id={action.id}>
              <div class="card-head">
                <h2>
                  {names.get(action.serviceId) ?? `Service ${action.serviceId.slice(0, 8)}`}
                </h2>
                <Link href={`/incidents/${action.incidentId}`}>View incident</Link>
              </div>
              <ActionSummary action={action} onChanged={upsert} />
            </li>
          ))}
        </ul>
      </Loadable>
    </>
  )
}
