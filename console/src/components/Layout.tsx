// Header with the main navigation, the signed-in user and the live-stream state.
import type { ComponentChildren } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { onConnectionState, subscribe, type ConnectionState } from '../events'
import { Link, useLocation } from '../router'
import { useSession } from '../session'

const NAV = [
  { href: '/incidents', label: 'Incidents' },
  { href: '/approvals', label: 'Approvals' },
  { href: '/suppression', label: 'Suppression' },
  { href: '/services', label: 'Services' },
  { href: '/settings', label: 'Settings' }
]

const STATE_LABEL: Record<ConnectionState, string> = { connecting: 'Connecting…', open: 'Live', retrying: 'Reconnecting…' }

export function Layout({ children }: { children: ComponentChildren }) {
  const session = useSession()
  const { path } = useLocation()
  const [stream, setStream] = useState<ConnectionState>('connecting')
  const [signingOut, setSigningOut] = useState(false)

  // Keeps the event stream open across pages, and shows its state.
  useEffect(() => {
    const stopListening = subscribe(() => {})
    const stopState = onConnectionState(setStream)
    return () => {
      stopState()
      stopListening()
    }
  }, [])

  const me = session.me
  const who = me?.user?.email ?? me?.apiKey?.name ?? ''
  const current = (href: string) => path === href || path.startsWith(`${href}/`) || (href === '/incidents' && path === '/')

  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <Link href="/incidents" class="brand">
          Autopilot
        </Link>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.href}>
                <Link href={item.href} aria-current={current(item.href) ? 'page' : undefined}>
                  {item.label}
                </Link>
              </li>
            ))}
            {session.queueDashboard && (
              <li>
                <a href="/admin/queues">Queues</a>
              </li>
            )}
          </ul>
        </nav>
        <div class="user">
          <span class={`live live-${stream}`} role="status" title="Live event stream">
            {STATE_LABEL[stream]}
          </span>
          <span class="who">
            {who} <span class="role">({me?.role})</span>
          </span>
          <button
            type="button"
            class="secondary"
            disabled={signingOut}
            onClick={() => {
              setSigningOut(true)
              void session.signOut().finally(() => setSigningOut(false))
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  )
}
