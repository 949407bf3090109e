// Suppression rules: list (active first), create with a live preview, end, and "edit" (= replace).
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { del, get, post, withQuery } from '../api'
import { DataTable } from '../components/DataTable'
import { ErrorAlert, Loadable, Notice, Section, SeverityBadge, Time } from '../components/common'
import { formatLabels, formatNumber } from '../format'
import { useDebounced, useResource } from '../hooks'
import { useSession } from '../session'
import type { Page, PreviewReply, Severity, SuppressionRule, SuppressionRuleInput } from '../types'

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const GLOB = /^[A-Za-z0-9*._:-]{1,128}$/

interface FormState {
  service: string
  metric: string
  maxSeverity: '' | Severity
  startsAt: string
  endsAt: string
  recurring: boolean
  weekdays: number[]
  start: string
  end: string
  timezone: string
  reason: string
}

const pad = (n: number) => String(n).padStart(2, '0')
/** An ISO instant as a datetime-local value (local time, to the minute). */
function toLocalInput(iso: string | number): string {
  const d = new Date(iso)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}
const localZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'

function emptyForm(): FormState {
  const now = Date.now()
  return {
    service: '',
    metric: '',
    maxSeverity: '',
    startsAt: toLocalInput(now),
    endsAt: toLocalInput(now + 3600_000),
    recurring: false,
    weekdays: [1, 2, 3, 4, 5],
    start: '22:00',
    end: '23:00',
    timezone: localZone(),
    reason: ''
  }
}

function formFromRule(rule: SuppressionRule): FormState {
  const base = emptyForm()
  return {
    service: rule.service === '*' ? '' : rule.service,
    metric: rule.metric === '*' ? '' : rule.metric,
    maxSeverity: rule.maxSeverity ?? '',
    // An ended or past rule is re-created from now on, keeping its length.
    startsAt: Date.parse(rule.endsAt) > Date.now() ? toLocalInput(rule.startsAt) : base.startsAt,
    endsAt: Date.parse(rule.endsAt) > Date.now() ? toLocalInput(rule.endsAt) : toLocalInput(Date.now() + (Date.parse(rule.endsAt) - Date.parse(rule.startsAt))),
    recurring: rule.schedule !== null,
    weekdays: rule.schedule?.weekdays ?? base.weekdays,
    start: rule.schedule?.start ?? base.start,
    end: rule.schedule?.end ?? base.end,
    timezone: rule.schedule?.timezone ?? base.timezone,
    reason: rule.reason
  }
}

/** The create body, or the first problem with the form. */
function bodyOf(form: FormState): { body: SuppressionRuleInput } | { problem: string } {
  const startsAt = new Date(form.startsAt)
  const endsAt = new Date(form.endsAt)
  if (Number.isNaN(startsAt.getTime()) || Number.isNaN(endsAt.getTime())) return { problem: 'Enter a start and an end.' }
  if (endsAt <= startsAt) return { problem: 'The end must come after the start.' }
  if (form.service.trim() && !GLOB.test(form.service.trim())) return { problem: 'Service: letters, digits, * . _ : - only.' }
  if (form.metric.trim() && !GLOB.test(form.metric.trim())) return { problem: 'Metric: letters, digits, * . _ : - only.' }
  const body: SuppressionRuleInput = { startsAt: startsAt.toISOString(), endsAt: endsAt.toISOString(), reason: form.reason.trim() }
  if (form.service.trim()) body.service = form.service.trim()
  if (form.metric.trim()) body.metric = form.metric.trim()
  if (form.maxSeverity) body.maxSeverity = form.maxSeverity
  if (form.recurring) {
    if (form.weekdays.length === 0) return { problem: 'Pick at least one weekday.' }
    body.schedule = { weekdays: [...form.weekdays].sort(), start: form.start, end: form.end, timezone: form.timezone.trim() }
  }
  return { body }
}

function ruleState(rule: SuppressionRule): string {
  if (rule.endedAt) return 'ended'
  if (rule.active) return 'active'
  return Date.parse(rule.startsAt) > Date.now() ? 'scheduled' : 'expired'
}

const describeSchedule = (rule: SuppressionRule) =>
  rule.schedule ? `${rule.schedule.weekdays.map((d) => DAYS[d]).join(', ')} ${rule.schedule.start}–${rule.schedule.end} (${rule.schedule.timezone})` : '–'

export function SuppressionPage() {
  const session = useSession()
  const canEdit = session.can('operator')
  const rules = useResource((signal) => get<Page<SuppressionRule>>(withQuery('/v1/suppression-rules', { limit: 200 }), signal), [])
  const [form, setForm] = useState<FormState>(emptyForm)
  const [replacing, setReplacing] = useState<SuppressionRule | null>(null)
  const [saving, setSaving] = useState(false)
  const [saveError, setSaveError] = useState<unknown>(null)
  const [saved, setSaved] = useState<string | null>(null)
  const [listError, setListError] = useState<unknown>(null)
  const formRef = useRef<HTMLFormElement>(null)

  useEffect(() => {
    document.title = 'Suppression · Autopilot'
  }, [])

  const built = useMemo(() => bodyOf(form), [form])
  const previewBody = useDebounced('body' in built ? JSON.stringify({ ...built.body, reason: built.body.reason || 'preview' }) : null, 300)
  const preview = useResource(
    (signal) => (previewBody && canEdit ? post<PreviewReply>('/v1/suppression-rules/preview', JSON.parse(previewBody), signal) : Promise.resolve(null)),
    [previewBody, canEdit]
  )

  const set = <K extends keyof FormState>(name: K, value: FormState[K]) => setForm((previous) => ({ ...previous, [name]: value }))

  const sorted = useMemo(
    () =>
      [...(rules.data?.items ?? [])].sort((a, b) => {
        const rank = (rule: SuppressionRule) => ['active', 'scheduled', 'expired', 'ended'].indexOf(ruleState(rule))
        return rank(a) - rank(b) || Date.parse(b.startsAt) - Date.parse(a.startsAt)
      }),
    [rules.data]
  )

  async function save(event: Event) {
    event.preventDefault()
    if (!('body' in built)) return setSaveError(built.problem)
    if (!built.body.reason) return setSaveError('Give a reason.')
    setSaving(true)
    setSaveError(null)
    setSaved(null)
    try {
      const created = await post<SuppressionRule>('/v1/suppression-rules', built.body)
      if (replacing) {
        try {
          await del(`/v1/suppression-rules/${replacing.id}`)
        } catch (err) {
          setSaveError(`The new rule was created, but ending the old one failed: ${err instanceof Error ? err.message : String(err)}`)
        }
      }
      setSaved(replacing ? `Rule created; the previous rule was ended.` : `Rule created (${created.reason}).`)
      setReplacing(null)
      setForm(emptyForm())
      rules.reload()
    } catch (err) {
      setSaveError(err)
    } finally {
      setSaving(false)
    }
  }

  async function end(rule: SuppressionRule) {
    setListError(null)
    try {
      await del(`/v1/suppression-rules/${rule.id}`)
      rules.reload()
    } catch (err) {
      setListError(err)
    }
  }

  function edit(rule: SuppressionRule) {
    setReplacing(rule)
    setForm(formFromRule(rule))
    setSaved(null)
    setSaveError(null)
    formRef.current?.scrollIntoView({ behavior: 'smooth', block: 'start' })
    formRef.current?.querySelector<HTMLInputElement>('input')?.focus()
  }

  return (
    <>
      <h1>Suppression</h1>
      <div class="split">
        <Section title="Rules">
          <ErrorAlert error={rules.error ?? listError} />
          <Loadable loading={rules.loading && !rules.data} loadingLabel="Loading rules…" empty={sorted.length === 0} emptyText="No suppression rules.">
            <DataTable columns={['State', 'Service', 'Metric', 'Up to', 'Window', 'Weekly', 'Reason', canEdit && 'Actions']}>
              {sorted.map((rule) => (
                <tr key={rule.id} data-testid="suppression-rule" data-id={rule.id}>
                  <td>
                    <span class={`badge ${rule.active ? 'status-acknowledged' : ''}`}>{ruleState(rule)}</span>
                  </td>
                  <td>
                    <code>{rule.service}</code>
                  </td>
                  <td>
                    <code>{rule.metric}</code>
                  </td>
                  <td>{rule.maxSeverity ? <SeverityBadge severity={rule.maxSeverity} /> : 'any'}</td>
                  <td class="nowrap">
                    <Time iso={rule.startsAt} /> –<br />
                    <Time iso={rule.endedAt ?? rule.endsAt} />
                  </td>
                  <td>{describeSchedule(rule)}</td>
                  <td>{rule.reason}</td>
                  {canEdit && (
                    <td class="nowrap">
                      <button type="button" class="secondary" onClick={() => edit(rule)} aria-label={`Edit rule: ${rule.reason}`}>
                        Edit
                      </button>{' '}
                      {!rule.endedAt && Date.parse(rule.endsAt) > Date.now() && (
                        <button type="button" class="danger" onClick={() => end(rule)} aria-label={`End rule: ${rule.reason}`}>
                          End
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </DataTable>
          </Loadable>
        </Section>

        {canEdit ? (
          <Section title={replacing ? 'Edit rule' : 'New rule'}>
            <form ref={formRef} onSubmit={save} class="grid" aria-label={replacing ? 'Edit suppression rule' : 'New suppression rule'}>
              {replacing && (
                <div style={{ gridColumn: '1 / -1' }}>
                  <Notice>
                    Editing “{replacing.reason}”. Saving creates a new rule with these settings and ends the old one (rules cannot be changed in
                    place).{' '}
                    <button
                      type="button"
                      class="secondary"
                      onClick={() => {
                        setReplacing(null)
                        setForm(emptyForm())
                      }}
                    >
                      Cancel editing
                    </button>
                  </Notice>
                </div>
              )}
              <div class="field">
                <label for="s-service">Service</label>
                <input id="s-service" placeholder="any (* = wildcard)" value={form.service} onInput={(e) => set('service', e.currentTarget.value)} />
              </div>
              <div class="field">
                <label for="s-metric">Metric</label>
                <input id="s-metric" placeholder="any (* = wildcard)" value={form.metric} onInput={(e) => set('metric', e.currentTarget.value)} />
              </div>
              <div class="field">
                <label for="s-severity">Suppress up to severity</label>
                <select id="s-severity" value={form.maxSeverity} onChange={(e) => set('maxSeverity', e.currentTarget.value as FormState['maxSeverity'])}>
                  <option value="">Any severity</option>
                  <option value="warning">Warning only</option>
                  <option value="critical">Critical and below</option>
                </select>
              </div>
              <div class="field">
                <label for="s-starts">Starts</label>
                <input id="s-starts" type="datetime-local" required value={form.startsAt} onInput={(e) => set('startsAt', e.currentTarget.value)} />
              </div>
              <div class="field">
                <label for="s-ends">Ends</label>
                <input id="s-ends" type="datetime-local" required value={form.endsAt} onInput={(e) => set('endsAt', e.currentTarget.value)} />
              </div>
              <div class="field" style={{ gridColumn: '1 / -1' }}>
                <label class="checkbox">
                  <input type="checkbox" checked={form.recurring} onChange={(e) => set('recurring', e.currentTarget.checked)} />
                  Only on a weekly schedule within that window
                </label>
              </div>
              {form.recurring && (
                <>
                  <fieldset style={{ gridColumn: '1 / -1' }}>
                    <legend>Weekdays</legend>
                    <div class="row">
                      {DAYS.map((day, index) => (
                        <label class="checkbox" key={day}>
                          <input
                            type="checkbox"
                            checked={form.weekdays.includes(index)}
                            onChange={(e) =>
                              set('weekdays', e.currentTarget.checked ? [...form.weekdays, index] : form.weekdays.filter((d) => d !== index))
                            }
                          />
                          {day}
                        </label>
                      ))}
                    </div>
                  </fieldset>
                  <div class="field">
                    <label for="s-from">From (HH:MM)</label>
                    <input id="s-from" type="time" required value={form.start} onInput={(e) => set('start', e.currentTarget.value)} />
                  </div>
                  <div class="field">
                    <label for="s-to">To (HH:MM)</label>
                    <input id="s-to" type="time" required value={form.end} onInput={(e) => set('end', e.currentTarget.value)} />
                  </div>
                  <div class="field">
                    <label for="s-tz">Time zone</label>
                    <input id="s-tz" required value={form.timezone} onInput={(e) => set('timezone', e.currentTarget.value)} />
                  </div>
                </>
              )}
              <div class="field" style={{ gridColumn: '1 / -1' }}>
                <label for="s-reason">Reason</label>
                <input id="s-reason" required maxLength={500} value={form.reason} onInput={(e) => set('reason', e.currentTarget.value)} />
              </div>
              <div style={{ gridColumn: '1 / -1' }}>
                <ErrorAlert error={saveError} />
                {saved && (
                  <p class="alert alert-info" role="status">
                    {saved}
                  </p>
                )}
                <button type="submit" disabled={saving}>
                  {saving ? 'Saving…' : replacing ? 'Save as new rule and end the old one' : 'Create rule'}
                </button>
              </div>
            </form>
            <PreviewPanel built={built} preview={preview.data ?? null} loading={preview.loading} error={preview.error} />
          </Section>
        ) : (
          <Section title="New rule">
            <p class="muted">Creating and ending rules needs the operator role or above.</p>
          </Section>
        )}
      </div>
    </>
  )
}

function PreviewPanel({
  built,
  preview,
  loading,
  error
}: {
  built: ReturnType<typeof bodyOf>
  preview: PreviewReply | null
  loading: boolean
  error: unknown
}) {
  return (
    <div class="preview" aria-live="polite" aria-busy={loading}>
      <h3>Preview: the last hour</h3>
      {'problem' in built ? (
        <p class="muted">{built.problem}</p>
      ) : error ? (
        <ErrorAlert error={error} />
      ) : !preview ? (
        <p class="muted">Checking…</p>
      ) : (
        <>
          <p data-testid="preview-summary">
            Would have suppressed <strong>{preview.matches}</strong> of {preview.examined} anomal{preview.examined === 1 ? 'y' : 'ies'} on the services it
            names.
          </p>
          {preview.examples.length > 0 && (
            <DataTable columns={['At', 'Service', 'Series', 'Severity', { label: 'Value', num: true }]}>
              {preview.examples.map((example, index) => (
                <tr key={`${example.series}-${example.at}-${index}`}>
                  <td class="nowrap">
                    <Time iso={example.at} />
                  </td>
                  <td>{example.service}</td>
                  <td>
                    {example.metric}
                    <code>{formatLabels(example.labels)}</code>
                  </td>
                  <td>
                    <SeverityBadge severity={example.severity} />
                  </td>
                  <td class="num">{formatNumber(example.value)}</td>
                </tr>
              ))}
            </DataTable>
          )}
        </>
      )}
    </div>
  )
}
