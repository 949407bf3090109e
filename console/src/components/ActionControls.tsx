// Approve / reject a pending action (reject asks for a reason), with the API's refusal shown.
import { useState } from 'preact/hooks'
import { post } from '../api'
import { formatDuration } from '../format'
import { useNow } from '../hooks'
import type { Action } from '../types'
import { ErrorAlert } from './common'

export function Countdown({ until }: { until: string }) {
  const now = useNow(1000)
  const left = Date.parse(until) - now
  return (
    <span class={`countdown${left < 60_000 ? ' soon' : ''}`} title={until}>
      {left > 0 ? `expires in ${formatDuration(left)}` : 'expired'}
    </span>
  )
}

export function ActionControls({ action, onChanged }: { action: Action; onChanged: (action: Action) => void }) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [rejecting, setRejecting] = useState(false)
  const [reason, setReason] = useState('')
  const reasonId = `reject-reason-${action.id}`

  async function run(step: () => Promise<Action>) {
    setBusy(true)
    setError(null)
    try {
      onChanged(await step())
      setRejecting(false)
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <div class="action-controls">
      {!rejecting ? (
        <div class="row">
          <button type="button" disabled={busy} onClick={() => run(() => post<Action>(`/v1/actions/${action.id}/approve`))}>
            Approve
          </button>
          <button type="button" class="danger" disabled={busy} onClick={() => setRejecting(true)}>
            Reject
          </button>
        </div>
      ) : (
        <form
          class="inline-form"
          onSubmit={(event) => {
            event.preventDefault()
            void run(() => post<Action>(`/v1/actions/${action.id}/reject`, { reason: reason.trim() }))
          }}
        >
          <div class="field">
            <label for={reasonId}>Reason for rejecting</label>
            <input id={reasonId} required maxLength={500} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          </div>
          <button type="submit" class="danger" disabled={busy || reason.trim() === ''}>
            Confirm rejection
          </button>
          <button type="button" class="secondary" disabled={busy} onClick={() => setRejecting(false)}>
            Cancel
          </button>
        </form>
      )}
      <ErrorAlert error={error} />
    </div>
  )
}
