import 'uplot/dist/uPlot.min.css'
import './styles.css'
import { render } from 'preact'
import { useEffect } from 'preact/hooks'
import { Loading } from './components/common'
import { Layout } from './components/Layout'
import { ApprovalsPage } from './pages/Approvals'
import { IncidentDetailPage } from './pages/IncidentDetail'
import { IncidentsPage } from './pages/Incidents'
import { LoginPage } from './pages/Login'
import { ServiceDetailPage } from './pages/ServiceDetail'
import { ServicesPage } from './pages/Services'
import { SettingsPage } from './pages/Settings'
import { SuppressionPage } from './pages/Suppression'
import { currentHref, Link, loginUrl, match, navigate, useLocation } from './router'
import { SessionProvider, useSession } from './session'

function NotFoundPage() {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        <Link href="/incidents">Back to incidents</Link>
      </p>
    </>
  )
}

function Page({ path }: { path: string }) {
  if (path === '/' || path === '/incidents') return <IncidentsPage />
  let params = match('/incidents/:id', path)
  if (params) return <IncidentDetailPage id={params.id!} key={params.id} />
  if (path === '/approvals') return <ApprovalsPage />
  if (path === '/suppression') return <SuppressionPage />
  if (path === '/services') return <ServicesPage />
  params = match('/services/:id', path)
  if (params) return <ServiceDetailPage id={params.id!} key={params.id} />
  if (path === '/settings') return <SettingsPage />
  return <NotFoundPage />
}

function App() {
  const session = useSession()
  const location = useLocation()
  const onLogin = location.path === '/login'

  useEffect(() => {
    if (session.status === 'ready' && !session.me && !onLogin) {
      navigate(loginUrl(currentHref()), { replace: true })
    }
  }, [session.status, session.me, onLogin, location.href])

  if (session.status === 'loading') return <Loading label="Loading the console…" />
  if (session.status === 'error') {
    return (
      <main id="main" class="login">
        <div class="card login-card">
          <h1>Cannot reach Autopilot</h1>
          <div class="alert alert-error" role="alert">
            {session.error}
          </div>
          <button type="button" onClick={session.retry}>
            Try again
          </button>
        </div>
      </main>
    )
  }
  if (onLogin || !session.me) return <LoginPage />
  return (
    <Layout>
      <Page path={location.path} />
    </Layout>
  )
}

render(
  <SessionProvider>
    <App />
  </SessionProvider>,
  document.getElementById('app')!
)
