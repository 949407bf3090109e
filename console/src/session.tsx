// The signed-in user, kept in step with every session reply.
import { createContext, type ComponentChildren } from 'preact'
import { useContext, useEffect, useMemo, useState } from 'preact/hooks'
import * as api from './api'
import { atLeast } from './format'
import { currentHref, loginUrl, navigate } from './router'
import type { Me, Role, SessionReply } from './types'

export interface Session {
  status: 'loading' | 'ready' | 'error'
  me: Me | null
  queueDashboard: boolean
  error: string | null
  signIn(email: string, password: string): Promise<void>
  signOut(): Promise<void>
  retry(): void
  /** True when the signed-in role is at least `role`. */
  can(role: Role): boolean
}

const SessionContext = createContext<Session | null>(null)

export function useSession(): Session {
  const session = useContext(SessionContext)
  if (!session) throw new Error('useSession outside SessionProvider')
  return session
}

export function SessionProvider({ children }: { children: ComponentChildren }) {
  const [reply, setReply] = useState<SessionReply | null>(null)
  const [status, setStatus] = useState<Session['status']>('loading')
  const [error, setError] = useState<string | null>(null)
  const [attempt, setAttempt] = useState(0)

  useEffect(() => {
    const stop = api.onSessionReply((next) => setReply(next))
    api.setUnauthenticatedHandler(() => {
      setReply((previous) => (previous ? { ...previous, me: null } : previous))
      navigate(loginUrl(currentHref()), { replace: true })
    })
    return stop
  }, [])

  useEffect(() => {
    let cancelled = false
    setStatus('loading')
    // An expired access cookie is renewed once (the refresh cookie lives longer) before sign-in is asked for.
    api
      .resumeSession()
      .then(() => !cancelled && setStatus('ready'))
      .catch((err: unknown) => {
        if (cancelled) return
        setError(api.messageOf(err))
        setStatus('error')
      })
    return () => {
      cancelled = true
    }
  }, [attempt])

  const session = useMemo<Session>(
    () => ({
      status,
      me: reply?.me ?? null,
      queueDashboard: reply?.queueDashboard ?? false,
      error,
      async signIn(email, password) {
        await api.signIn(email, password)
      },
      async signOut() {
        try {
          await api.signOut()
        } finally {
          navigate(loginUrl(), { replace: true })
          setReply((previous) => (previous ? { ...previous, me: null } : previous))
          // A fresh CSRF token for the next sign-in.
          await api.loadSession().catch(() => undefined)
        }
      },
      retry: () => setAttempt((n) => n + 1),
      can: (role) => atLeast(reply?.me?.role, role)
    }),
    [reply, status, error]
  )
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>
}
