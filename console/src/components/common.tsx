// Small shared pieces: alerts, times, loading and empty states.
import type { ComponentChildren } from 'preact'
import { messageOf } from '../api'
import { localDateTime } from '../format'

/** An accessible error message (the problem's `detail`); nothing when there is no error. */
export function ErrorAlert({ error }: { error: unknown }) {
  if (error === null || error === undefined || error === false) return null
  return (
    <div class="alert alert-error" role="alert">
      {typeof error === 'string' ? error : messageOf(error)}
    </div>
  )
}

export function Notice({ children }: { children: ComponentChildren }) {
  return (
    <div class="alert alert-info" role="status">
      {children}
    </div>
  )
}

/** A date in local time, with its ISO form in the title. */
export function Time({ iso, fallback = '–' }: { iso: string | null | undefined; fallback?: string }) {
  if (!iso) return <span>{fallback}</span>
  return (
    <time dateTime={iso} title={iso}>
      {localDateTime(iso)}
    </time>
  )
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p class="muted" role="status" aria-live="polite">
      {label}
    </p>
  )
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>
}

/** Loading until there is data, then the empty message when there is nothing to list, else the children. */
export function Loadable({
  loading = false,
  loadingLabel,
  empty = false,
  emptyText,
  children
}: {
  /** True while the first data is still on its way. */
  loading?: boolean
  loadingLabel?: string
  /** True when there is nothing to list. */
  empty?: boolean
  emptyText?: ComponentChildren
  children: ComponentChildren
}) {
  if (loading) return <Loading label={loadingLabel} />
  if (empty) return <Empty>{emptyText}</Empty>
  return <>{children}</>
}

export function SeverityBadge({ severity }: { severity: string }) {
  return <span class={`badge badge-${severity}`}>{severity}</span>
}

export function StatusBadge({ status, testId }: { status: string; testId?: string }) {
  return (
    <span class={`badge status-${status}`} data-testid={testId}>
      {status.replace(/_/g, ' ')}
    </span>
  )
}

/** A titled page section. */
export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="card">
      <div class="card-head">
        <h2>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  )
}
