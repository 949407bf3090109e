// What an action does and where it stands.
import { humanize } from '../format'
import { useSession } from '../session'
import type { Action } from '../types'
import { ActionControls, Countdown } from './ActionControls'
import { Time } from './common'

/** A one-line description: the webhook's method and URL, or a dry run. */
export function describeAction(action: Action): string {
  if (action.type === 'dry_run') return 'Dry run (records what it would do)'
  const method = typeof action.params.method === 'string' ? action.params.method : 'POST'
  const url = typeof action.params.url === 'string' ? action.params.url : ''
  return `Webhook ${method} ${url}`.trim()
}

export function ActionSummary({ action, onChanged }: { action: Action; onChanged: (action: Action) => void }) {
  const session = useSession()
  const pending = action.status === 'pending_approval'
  return (
    <div class="action">
      <div class="row">
        <strong>{describeAction(action)}</strong>
        <span data-testid="action-status" class={`badge status-${action.status}`}>
          {humanize(action.status)}
        </span>
        {action.verification.state !== 'pending' || action.status === 'succeeded' ? (
          <span class={`badge status-${action.verification.state}`} title="Verification">
            verification: {humanize(action.verification.state)}
          </span>
        ) : null}
        {pending && <Countdown until={action.expiresAt} />}
      </div>
      {action.reason && <p class="muted">Reason: {action.reason}</p>}
      {action.statusReason && <p class="muted">Status: {action.statusReason}</p>}
      {action.error && <p class="muted">Error: {action.error}</p>}
      <p class="muted">
        {action.runbookId ? <>Runbook {action.runbookId.slice(0, 8)} · </> : null}proposed <Time iso={action.createdAt} />
        {action.approvedAt && (
          <>
            {' '}
            · approved <Time iso={action.approvedAt} />
          </>
        )}
        {action.finishedAt && (
          <>
            {' '}
            · finished <Time iso={action.finishedAt} />
          </>
        )}
      </p>
      <details>
        <summary>Parameters</summary>
        <pre class="params">{JSON.stringify(action.params, null, 2)}</pre>
      </details>
      {pending && session.can('operator') && <ActionControls action={action} onChanged={onChanged} />}
      {pending && !session.can('operator') && <p class="hint">Approving needs the operator role or above.</p>}
    </div>
  )
}
