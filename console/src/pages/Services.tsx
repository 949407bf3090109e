// Service list.
import { useEffect, useState } from 'preact/hooks'
import { get, withQuery } from '../api'
import { DataTable } from '../components/DataTable'
import { ErrorAlert, Loadable, Time } from '../components/common'
import { useResource } from '../hooks'
import { Link } from '../router'
import type { Page, Service } from '../types'

export function ServicesPage() {
  const first = useResource((signal) => get<Page<Service>>(withQuery('/v1/services', { limit: 100 }), signal), [])
  const [more, setMore] = useState<Service[]>([])
  const [cursor, setCursor] = useState<string | null | undefined>(undefined)
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)

  useEffect(() => {
    document.title = 'Services · Autopilot'
  }, [])

  const next = cursor === undefined ? (first.data?.nextCursor ?? null) : cursor
  const services = [...(first.data?.items ?? []), ...more]

  async function loadMore() {
    if (!next) return
    setBusy(true)
    setError(null)
    try {
      const page = await get<Page<Service>>(withQuery('/v1/services', { limit: 100, cursor: next }))
      setMore((previous) => previous.concat(page.items))
      setCursor(page.nextCursor)
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <>
      <h1>Services</h1>
      <ErrorAlert error={first.error ?? error} />
      <Loadable
        loading={first.loading && !first.data}
        loadingLabel="Loading services…"
        empty={services.length === 0}
        emptyText="No services yet. Services are registered with POST /v1/services or by metrics naming them."
      >
        <DataTable
          card
          columns={['Name', 'Environment', 'Description', 'z threshold', 'Created']}
          footer={
            next && (
              <div class="more">
                <button type="button" onClick={loadMore} disabled={busy}>
                  {busy ? 'Loading…' : 'Load more'}
                </button>
              </div>
            )
          }
        >
          {services.map((service) => (
            <tr key={service.id} data-testid="service-row" data-id={service.id}>
              <td>
                <Link href={`/services/${service.id}`}>{service.name}</Link>
              </td>
              <td>{service.environment ?? '–'}</td>
              <td>{service.description ?? ''}</td>
              <td class="num">{service.detection.zThreshold}</td>
              <td class="nowrap">
                <Time iso={service.createdAt} />
              </td>
            </tr>
          ))}
        </DataTable>
      </Loadable>
    </>
  )
}
