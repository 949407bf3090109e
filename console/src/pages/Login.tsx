import { useEffect, useRef, useState } from 'preact/hooks'
import { ErrorAlert } from '../components/common'
import { navigate, useLocation } from '../router'
import { useSession } from '../session'

const DEFAULT_NEXT = '/console/incidents'

/**
 * Only console pages of this origin are followed after sign-in (no open redirect): `next` is resolved the
 * way the browser would (so `..`, `//host`, backslashes and encodings cannot step outside), then must be
 * /console or below it, and not the sign-in page itself.
 */
function safeNext(next: string | null): string {
  if (!next) return DEFAULT_NEXT
  let url: URL
  try {
    url = new URL(next, window.location.origin)
  } catch {
    return DEFAULT_NEXT
  }
  if (url.origin !== window.location.origin) return DEFAULT_NEXT
  const { pathname } = url
  if (pathname !== '/console' && !pathname.startsWith('/console/')) return DEFAULT_NEXT
  if (pathname === '/console/login' || pathname.startsWith('/console/login/')) return DEFAULT_NEXT
  return pathname + url.search + url.hash
}

export function LoginPage() {
  const session = useSession()
  const { query } = useLocation()
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const emailRef = useRef<HTMLInputElement>(null)
  const next = safeNext(query.get('next'))

  useEffect(() => {
    document.title = 'Sign in · Autopilot'
    emailRef.current?.focus()
  }, [])
  // Already signed in (or just signed in): go where the user wanted.
  useEffect(() => {
    if (session.me) navigate(next, { replace: true })
  }, [session.me, next])

  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await session.signIn(email.trim(), password)
    } catch (err) {
      setError(err)
      setPassword('')
    } finally {
      setBusy(false)
    }
  }

  return (
    <main id="main" class="login">
      <form class="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Sign in to Autopilot</h1>
        <ErrorAlert error={error} />
        <div class="field">
          <label for="login-email">Email</label>
          <input
            ref={emailRef}
            id="login-email"
            type="email"
            name="email"
            autoComplete="username"
            required
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="login-password">Password</label>
          <input
            id="login-password"
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </div>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  )
}
