// Incident list: filters in the URL, "Load more" pagination, live updates.
import { Component } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { get, withQuery } from '../api'
import { DataTable } from '../components/DataTable'
import { ErrorAlert, Loadable, SeverityBadge, StatusBadge } from '../components/common'
import { localDateTime } from '../format'
import { hasId, isIncident } from '../guards'
import { useDebounced, useEvents, useResource, useThrottled } from '../hooks'
import { Link, navigate, useLocation } from '../router'
import type { Incident, Page, Service } from '../types'

const PAGE_SIZE = 100

interface Filters {
  status: string
  severity: string
  service: string
  flapping: string
}

function filtersOf(query: URLSearchParams): Filters {
  return {
    status: query.get('status') ?? '',
    severity: query.get('severity') ?? '',
    service: query.get('service') ?? '',
    flapping: query.get('flapping') ?? ''
  }
}

const listUrl = (filters: Filters, cursor?: string | null, limit = PAGE_SIZE) => withQuery('/v1/incidents', { ...filters, limit, cursor })

/** Whether an incident passes the filters that the client can check (service is matched by the API). */
function passes(incident: Incident, filters: Filters): boolean {
  if (filters.status && incident.status !== filters.status) return false
  if (filters.severity && incident.severity !== filters.severity) return false
  if (filters.flapping && String(incident.flapping) !== filters.flapping) return false
  return true
}

/** One row; re-renders only when its incident object changes (1,000 rows stay cheap). */
class IncidentRow extends Component<{ incident: Incident }> {
  override shouldComponentUpdate(next: { incident: Incident }) {
    return next.incident !== this.props.incident
  }
  override render() {
    const incident = this.props.incident
    return (
      <tr data-testid="incident-row" data-id={incident.id}>
        <td class="title-cell">
          <Link href={`/incidents/${incident.id}`}>{incident.title}</Link>
        </td>
        <td>{incident.service}</td>
        <td>
          <SeverityBadge severity={incident.severity} />
        </td>
        <td>
          <StatusBadge status={incident.status} />
        </td>
        <td>{incident.flapping ? 'yes' : 'no'}</td>
        <td class="nowrap">
          <time dateTime={incident.openedAt} title={incident.openedAt}>
            {localDateTime(incident.openedAt)}
          </time>
        </td>
        <td class="num">{incident.anomalyCount}</td>
      </tr>
    )
  }
}

export function IncidentsPage() {
  const { query } = useLocation()
  const filters = filtersOf(query)
  const filterKey = JSON.stringify(filters)
  const [items, setItems] = useState<Incident[]>([])
  const [cursor, setCursor] = useState<string | null>(null)
  const [loading, setLoading] = useState(true)
  const [loadingMore, setLoadingMore] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [serviceText, setServiceText] = useState(filters.service)
  const generation = useRef(0)

  const services = useResource((signal) => get<Page<Service>>('/v1/services?limit=200', signal), [])

  useEffect(() => {
    document.title = 'Incidents · Autopilot'
  }, [])

  // First page whenever the filters change.
  useEffect(() => {
    const controller = new AbortController()
    const mine = ++generation.current
    setLoading(true)
    setError(null)
    // Rows of the previous filters are not shown as if they matched the new ones.
    setItems([])
    setCursor(null)
    get<Page<Incident>>(listUrl(filters), controller.signal).then(
      (page) => {
        if (mine !== generation.current) return
        setItems(page.items)
        setCursor(page.nextCursor)
        setLoading(false)
      },
      (err: unknown) => {
        if (controller.signal.aborted) return
        setError(err)
        setLoading(false)
      }
    )
    return () => controller.abort()
  }, [filterKey])

  // The service box updates the URL once typing pauses.
  const settledService = useDebounced(serviceText, 350)
  useEffect(() => {
    if (settledService.trim() !== filters.service) setFilter('service', settledService.trim())
  }, [settledService])

  function setFilter(name: keyof Filters, value: string) {
    const next = { ...filtersOf(new URLSearchParams(window.location.search)), [name]: value }
    navigate(withQuery('/incidents', { ...next }), { replace: true })
  }

  async function loadMore() {
    if (!cursor) return
    const mine = generation.current
    setLoadingMore(true)
    setError(null)
    try {
      const page = await get<Page<Incident>>(listUrl(filters, cursor))
      if (mine !== generation.current) return
      setItems((previous) => {
        const seen = new Set(previous.map((incident) => incident.id))
        return previous.concat(page.items.filter((incident) => !seen.has(incident.id)))
      })
      setCursor(page.nextCursor)
    } catch (err) {
      setError(err)
    } finally {
      setLoadingMore(false)
    }
  }

  /** New incidents (and changes) of the first page, merged in front of what is loaded. */
  async function refreshFirstPage() {
    const mine = generation.current
    try {
      const page = await get<Page<Incident>>(listUrl(filters))
      if (mine !== generation.current) return
      setItems((previous) => {
        const fresh = new Map(page.items.map((incident) => [incident.id, incident]))
        const known = new Set(previous.map((incident) => incident.id))
        const added = page.items.filter((incident) => !known.has(incident.id))
        return added.concat(previous.map((incident) => fresh.get(incident.id) ?? incident))
      })
    } catch {
      // a live refresh failing is not worth an alert: the next event or a reload tries again
    }
  }

  // Bursts of events (many incidents opening at once) coalesce into at most one refetch a second.
  const scheduleRefresh = useThrottled(() => void refreshFirstPage(), 1000)

  function patchRow(incident: Incident) {
    setItems((previous) => {
      const index = previous.findIndex((row) => row.id === incident.id)
      if (index < 0) return previous
      const next = previous.slice()
      next[index] = incident
      return next
    })
  }

  useEvents((event) => {
    if (event.type === 'reconnected' || event.type === 'incident.opened') {
      scheduleRefresh()
      return
    }
    if (event.type !== 'incident.updated' && event.type !== 'incident.resolved') return
    if (isIncident(event.data)) {
      const incident = event.data
      if (items.some((row) => row.id === incident.id)) patchRow(incident)
      else if (passes(incident, filters)) scheduleRefresh()
    } else if (hasId(event.data)) {
      // A truncated event: read the incident itself.
      const id = event.data.id
      if (items.some((row) => row.id === id)) get<Incident>(`/v1/incidents/${id}`).then(patchRow, () => undefined)
    }
  })

  const serviceNames = services.data?.items ?? []
  const anyFilter = Object.values(filters).some(Boolean)

  return (
    <>
      <div class="page-head">
        <h1>Incidents</h1>
        <span class="muted" aria-live="polite">
          {loading ? '' : `${items.length} shown${cursor ? ', more available' : ''}`}
        </span>
      </div>
      <form class="filters card" role="search" aria-label="Filter incidents" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="f-status">Status</label>
          <select id="f-status" value={filters.status} onChange={(e) => setFilter('status', e.currentTarget.value)}>
            <option value="">Any</option>
            <option value="open">Open</option>
            <option value="acknowledged">Acknowledged</option>
            <option value="resolved">Resolved</option>
          </select>
        </div>
        <div class="field">
          <label for="f-severity">Severity</label>
          <select id="f-severity" value={filters.severity} onChange={(e) => setFilter('severity', e.currentTarget.value)}>
            <option value="">Any</option>
            <option value="warning">Warning</option>
            <option value="critical">Critical</option>
          </select>
        </div>
        <div class="field">
          <label for="f-service">Service</label>
          <input
            id="f-service"
            list="f-service-names"
            placeholder="name or id"
            value={serviceText}
            onInput={(e) => setServiceText(e.currentTarget.value)}
          />
          <datalist id="f-service-names">
            {serviceNames.map((service) => (
              <option key={service.id} value={service.name} />
            ))}
          </datalist>
        </div>
        <div class="field">
          <label for="f-flapping">Flapping</label>
          <select id="f-flapping" value={filters.flapping} onChange={(e) => setFilter('flapping', e.currentTarget.value)}>
            <option value="">Any</option>
            <option value="true">Flapping</option>
            <option value="false">Not flapping</option>
          </select>
        </div>
        {anyFilter && (
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setServiceText('')
              navigate('/incidents', { replace: true })
            }}
          >
            Clear filters
          </button>
        )}
      </form>
      <ErrorAlert error={error} />
      <Loadable
        loading={loading && items.length === 0}
        loadingLabel="Loading incidents…"
        empty={items.length === 0}
        emptyText={anyFilter ? 'No incidents match these filters.' : 'No incidents yet.'}
      >
        <DataTable
          card
          busy={loading}
          caption="Incidents, newest first"
          columns={['Title', 'Service', 'Severity', 'Status', 'Flapping', 'Opened', { label: 'Anomalies', num: true }]}
          footer={
            <div class="more">
              {cursor ? (
                <button type="button" onClick={loadMore} disabled={loadingMore}>
                  {loadingMore ? 'Loading…' : 'Load more'}
                </button>
              ) : (
                <span class="muted">All incidents loaded.</span>
              )}
            </div>
          }
        >
          {items.map((incident) => (
            <IncidentRow key={incident.id} incident={incident} />
          ))}
        </DataTable>
      </Loadable>
    </>
  )
}
