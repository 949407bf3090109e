// Settings: API keys and users (admin+), plan (owner changes it), integration snippets.
import { useEffect, useRef, useState } from 'preact/hooks'
import { del, get, post, put, withQuery } from '../api'
import { DataTable } from '../components/DataTable'
import { ErrorAlert, Loadable, Loading, Section, Time } from '../components/common'
import { ROLES, atLeast } from '../format'
import { useResource } from '../hooks'
import { useSession } from '../session'
import type { ApiKey, CreatedApiKey, Page, Plan, Role, Subscription, User } from '../types'

export function SettingsPage() {
  const session = useSession()
  useEffect(() => {
    document.title = 'Settings · Autopilot'
  }, [])
  return (
    <>
      <h1>Settings</h1>
      <PlanSection />
      {session.can('admin') ? (
        <>
          <ApiKeysSection />
          <UsersSection />
        </>
      ) : (
        <Section title="API keys and users">
          <p class="muted">Managing API keys and users needs the admin role.</p>
        </Section>
      )}
      <SnippetsSection />
    </>
  )
}

/** Roles the signed-in user may hand out (the API refuses roles above your own). */
function useGrantableRoles(): Role[] {
  const { me } = useSession()
  return ROLES.filter((role) => me && atLeast(me.role, role))
}

/** A labelled choice among the roles the signed-in user may hand out. */
function RoleSelect({ id, value, onChange }: { id: string; value: Role; onChange: (role: Role) => void }) {
  const roles = useGrantableRoles()
  return (
    <div class="field">
      <label for={id}>Role</label>
      <select id={id} value={value} onChange={(e) => onChange(e.currentTarget.value as Role)}>
        {roles.map((r) => (
          <option key={r} value={r}>
            {r}
          </option>
        ))}
      </select>
    </div>
  )
}

function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState<'idle' | 'done' | 'failed'>('idle')
  const reset = useRef<ReturnType<typeof setTimeout> | null>(null)
  const mounted = useRef(true)
  // No state change after unmount (e.g. the new key's panel closed within the 2 s).
  useEffect(
    () => () => {
      mounted.current = false
      if (reset.current) clearTimeout(reset.current)
    },
    []
  )
  return (
    <button
      type="button"
      class="secondary"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text)
          setCopied('done')
        } catch {
          setCopied('failed')
        }
        if (!mounted.current) return
        if (reset.current) clearTimeout(reset.current)
        reset.current = setTimeout(() => setCopied('idle'), 2000)
      }}
    >
      {copied === 'done' ? 'Copied' : copied === 'failed' ? 'Copy failed: select and copy' : label}
    </button>
  )
}

function PlanSection() {
  const session = useSession()
  const subscription = useResource((signal) => get<Subscription>('/v1/subscription', signal), [])
  const [plan, setPlan] = useState<Plan | ''>('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const data = subscription.data

  async function change(event: Event) {
    event.preventDefault()
    if (!plan) return
    setBusy(true)
    setError(null)
    try {
      const updated = await put<Subscription>('/v1/subscription', { plan })
      subscription.setData(() => updated)
      setPlan('')
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <Section title="Plan">
      <ErrorAlert error={subscription.error} />
      {!data ? (
        <Loading />
      ) : (
        <>
          <p>
            <strong>{data.plan}</strong> plan ({data.status}), changed <Time iso={data.updatedAt} />. Organization:{' '}
            {session.me?.organization.name}.
          </p>
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Plan limits</caption>
              <tbody>
                {Object.entries(data.limits).map(([name, value]) => (
                  <tr key={name}>
                    <th scope="row">{name.replace(/([A-Z])/g, ' $1').toLowerCase()}</th>
                    <td class="num">{value === null ? 'unlimited' : typeof value === 'boolean' ? (value ? 'yes' : 'no') : value.toLocaleString()}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {session.can('owner') ? (
            <form class="inline-form" onSubmit={change}>
              <div class="field">
                <label for="plan">Change plan</label>
                <select id="plan" value={plan} onChange={(e) => setPlan(e.currentTarget.value as Plan | '')}>
                  <option value="">Choose a plan</option>
                  {(['free', 'team', 'enterprise'] as Plan[])
                    .filter((p) => p !== data.plan)
                    .map((p) => (
                      <option key={p} value={p}>
                        {p}
                      </option>
                    ))}
                </select>
              </div>
              <button type="submit" disabled={busy || !plan}>
                Change plan
              </button>
            </form>
          ) : (
            <p class="hint">Only the owner can change the plan.</p>
          )}
          <ErrorAlert error={error} />
        </>
      )}
    </Section>
  )
}

function ApiKeysSection() {
  const keys = useResource((signal) => get<Page<ApiKey>>(withQuery('/v1/api-keys', { limit: 200 }), signal), [])
  const [name, setName] = useState('')
  const [role, setRole] = useState<Role>('agent')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [created, setCreated] = useState<CreatedApiKey | null>(null)
  const items = keys.data?.items ?? []

  async function create(event: Event) {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const key = await post<CreatedApiKey>('/v1/api-keys', { name: name.trim(), role })
      setCreated(key)
      setName('')
      keys.reload()
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  async function revoke(key: ApiKey) {
    if (!window.confirm(`Revoke the API key "${key.name}"? Anything using it stops working at once.`)) return
    setError(null)
    try {
      await del(`/v1/api-keys/${key.id}`)
      keys.reload()
    } catch (err) {
      setError(err)
    }
  }

  return (
    <Section title="API keys">
      {created && (
        <div class="alert alert-warning" role="status">
          <p>
            <strong>Copy the key “{created.name}” now: it is shown only once.</strong>
          </p>
          <div class="secret">
            <code data-testid="new-api-key">{created.key}</code>
            <CopyButton text={created.key} label="Copy key" />
            <button type="button" class="secondary" onClick={() => setCreated(null)}>
              I have saved it
            </button>
          </div>
        </div>
      )}
      <form class="inline-form" onSubmit={create} aria-label="Create an API key">
        <div class="field">
          <label for="key-name">Name</label>
          <input id="key-name" required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <RoleSelect id="key-role" value={role} onChange={setRole} />
        <button type="submit" disabled={busy || !name.trim()}>
          Create key
        </button>
      </form>
      <ErrorAlert error={error ?? keys.error} />
      <Loadable loading={keys.loading && !keys.data} empty={items.length === 0} emptyText="No API keys.">
        <DataTable columns={['Name', 'Prefix', 'Role', 'Created', 'Status', 'Actions']}>
          {items.map((key) => (
            <tr key={key.id}>
              <td>{key.name}</td>
              <td>
                <code>{key.prefix}</code>
              </td>
              <td>{key.role}</td>
              <td class="nowrap">
                <Time iso={key.createdAt} />
              </td>
              <td>{key.revokedAt ? <>revoked <Time iso={key.revokedAt} /></> : 'active'}</td>
              <td>
                {!key.revokedAt && (
                  <button type="button" class="danger" aria-label={`Revoke key ${key.name}`} onClick={() => revoke(key)}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      </Loadable>
    </Section>
  )
}

function UsersSection() {
  const users = useResource((signal) => get<Page<User>>(withQuery('/v1/users', { limit: 200 }), signal), [])
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [role, setRole] = useState<Role>('operator')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const [done, setDone] = useState<string | null>(null)

  async function create(event: Event) {
    event.preventDefault()
    setBusy(true)
    setError(null)
    setDone(null)
    try {
      const user = await post<User>('/v1/users', { email: email.trim(), password, role })
      setDone(`Added ${user.email} as ${user.role}.`)
      setEmail('')
      setPassword('')
      users.reload()
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <Section title="Users">
      <form class="inline-form" onSubmit={create} aria-label="Add a user">
        <div class="field">
          <label for="user-email">Email</label>
          <input id="user-email" type="email" required maxLength={254} autoComplete="off" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="user-password">Initial password (12+ characters)</label>
          <input
            id="user-password"
            type="password"
            required
            minLength={12}
            maxLength={256}
            autoComplete="new-password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </div>
        <RoleSelect id="user-role" value={role} onChange={setRole} />
        <button type="submit" disabled={busy}>
          Add user
        </button>
      </form>
      <ErrorAlert error={error ?? users.error} />
      {done && (
        <p class="alert alert-info" role="status">
          {done}
        </p>
      )}
      <Loadable loading={users.loading && !users.data}>
        <DataTable columns={['Email', 'Role', 'Added']}>
          {(users.data?.items ?? []).map((user) => (
            <tr key={user.id}>
              <td>{user.email}</td>
              <td>{user.role}</td>
              <td class="nowrap">
                <Time iso={user.createdAt} />
              </td>
            </tr>
          ))}
        </DataTable>
      </Loadable>
    </Section>
  )
}

function SnippetsSection() {
  const origin = window.location.origin
  const prometheus = `remote_write:
  - url: ${origin}/v1/integrations/prometheus/write
    authorization:
      type: Bearer
      credentials: <API key>
    # each series goes to the service named by its "service" label (else "job")
`
  const alertmanager = `receivers:
  - name: autopilot
    webhook_configs:
      - url: ${origin}/v1/integrations/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: <API key>
`
  return (
    <Section title="Integrations">
      <p class="muted">Replace &lt;API key&gt; with a key of role agent or above (create one above). Keys are sent as a Bearer token.</p>
      <h3 id="snippet-prometheus">Prometheus remote_write (prometheus.yml)</h3>
      <pre aria-labelledby="snippet-prometheus" tabIndex={0}>
        <code>{prometheus}</code>
      </pre>
      <CopyButton text={prometheus} label="Copy Prometheus snippet" />
      <h3 id="snippet-alertmanager">Alertmanager webhook (alertmanager.yml)</h3>
      <pre aria-labelledby="snippet-alertmanager" tabIndex={0}>
        <code>{alertmanager}</code>
      </pre>
      <CopyButton text={alertmanager} label="Copy Alertmanager snippet" />
    </Section>
  )
}
