import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../../src/app.js'
import { incidents } from '../../src/db/schema/index.js'
import { startWorker } from '../../src/worker.js'
import { apiKey, call, PASSWORD, signup, steady, testConfig, uniqueEmail, useApp, warmSamples, type Org } from '../helpers.js'
import { startReceiver } from '../receiver.js'
import { fetchFromPage, launchBrowser, PHONE, screenshot, serve, signedIn } from './browser.js'

const ctx = useApp({ WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', SWEEP_INTERVAL_MS: '200', VERIFICATION_WINDOW_SECONDS: '1' })

let base: string
let browser: Browser
let receiver: Awaited<ReturnType<typeof startReceiver>>
let stopWorker: () => Promise<void>
beforeAll(async () => {
  base = await serve(ctx.app)
  browser = await launchBrowser()
  receiver = await startReceiver()
  stopWorker = await startWorker(ctx.config)
})
afterAll(async () => {
  await browser?.close()
  await stopWorker?.()
  await receiver?.close()
})

interface Setup {
  org: Org
  key: string
  service: { id: string; name: string }
}
/** An organization with a service `api` whose runbook proposes a webhook to the receiver, held for approval. */
async function setup(): Promise<Setup> {
  const org = await signup(ctx.app)
  const key = (await apiKey(ctx.app, org)).key
  const created = await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'api', detection: { minSamples: 5, confirmSeconds: 0 } } })
  const service = created.json()
  const runbook = await call(ctx.app, org.token, {
    method: 'POST',
    url: `/v1/services/${service.id}/runbooks`,
    payload: {
      name: 'restart api',
      match: { metric: 'latency', minSeverity: 'warning' },
      action: { type: 'webhook', params: { url: `${receiver.url}/${org.organizationId}`, body: { restart: 'api' } } },
      approval: 'manual'
    }
  })
  expect(runbook.statusCode, runbook.body).toBe(201)
  return { org, key, service }
}
const send = (s: Setup, samples: object[]) => call(ctx.app, s.key, { method: 'POST', url: '/v1/metrics', payload: { samples } })
/** A warmed baseline (samples 5 minutes apart), then a spike: one incident, one action awaiting approval. */
async function openIncident(s: Setup) {
  expect((await send(s, warmSamples('api', 'latency', 10, { stepMs: 300_000 }))).statusCode).toBe(202)
  const spike = await send(s, [{ service: 'api', metric: 'latency', value: 900 }])
  expect(spike.json().incidents).toHaveLength(1)
  return spike.json().incidents[0].id as string
}
async function addUser(org: Org, role: string) {
  const email = uniqueEmail(role)
  const res = await call(ctx.app, org.token, { method: 'POST', url: '/v1/users', payload: { email, password: PASSWORD, role } })
  expect(res.statusCode, res.body).toBe(201)
  return email
}
const rows = (page: Page) => page.getByTestId('incident-row')

describe('operator console in a real browser (Debian chromium, headless)', () => {
  it('sign in → samples open an incident → it appears live → approve its action → one webhook → succeeded → resolved after verification', async () => {
    const s = await setup()
    const page = await signedIn(browser, base, s.org.email, PASSWORD)
    await expect.poll(() => page.getByRole('heading', { name: /incidents/i }).count()).toBeGreaterThan(0)
    expect(await rows(page).count()).toBe(0)

    // Samples arrive through the API; the open list updates over the event stream, no reload.
    const incidentId = await openIncident(s)
    await expect.poll(() => rows(page).count(), { timeout: 10_000 }).toBe(1)
    await expect.poll(() => page.locator(`[data-testid="incident-row"][data-id="${incidentId}"]`).count()).toBe(1)
    await screenshot(page, 'incidents')

    await page.locator(`[data-testid="incident-row"][data-id="${incidentId}"] a`).first().click()
    await expect.poll(() => page.getByTestId('incident-status').first().textContent(), { timeout: 10_000 }).toMatch(/open/i)
    await expect.poll(() => page.getByTestId('action-status').first().textContent(), { timeout: 10_000 }).toMatch(/pending/i)
    await expect.poll(() => page.locator('.u-over, canvas').count(), { timeout: 10_000 }).toBeGreaterThan(0) // the chart drew
    // …with the spike's anomaly on it (it lies within the chart's last minute) and a band around ~100.
    await expect.poll(() => page.locator('.chart-summary').first().textContent(), { timeout: 10_000 }).toMatch(/last value 900\b.*band \[\d+(\.\d+)?, 1\d\d(\.\d+)?\].*1 anomaly marked/)
    await screenshot(page, 'incident')

    await page.getByRole('button', { name: 'Approve' }).first().click()
    await expect.poll(() => receiver.received.filter((r) => r.url === `/${s.org.organizationId}`).length, { timeout: 15_000 }).toBe(1)
    await expect.poll(() => page.getByTestId('action-status').first().textContent(), { timeout: 15_000 }).toMatch(/succeeded/i)

    // The metric is back to normal: verification says recovered and resolves the incident, live on the page.
    await send(s, Array.from({ length: 5 }, (_, i) => ({ service: 'api', metric: 'latency', value: steady(i) })))
    await expect.poll(() => page.getByTestId('incident-status').first().textContent(), { timeout: 20_000 }).toMatch(/resolved/i)
    expect(receiver.received.filter((r) => r.url === `/${s.org.organizationId}`)).toHaveLength(1)
    await screenshot(page, 'incident-resolved')
    await page.context().close()
  })

  it('an agent sees the pending action but no approve button, and the API refuses the approval anyway', async () => {
    const s = await setup()
    await openIncident(s)
    const email = await addUser(s.org, 'agent')
    const page = await signedIn(browser, base, email, PASSWORD)
    await page.goto('/console/approvals')
    const pending = (await call(ctx.app, s.org.token, { method: 'GET', url: '/v1/actions?status=pending_approval' })).json().items
    expect(pending).toHaveLength(1)
    await expect.poll(() => page.getByText('restart api').count(), { timeout: 10_000 }).toBeGreaterThan(0)
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0)
    expect(await page.getByRole('button', { name: 'Reject' }).count()).toBe(0)
    const refused = await fetchFromPage(page, 'POST', `/v1/actions/${pending[0].id}/approve`, { csrf: true })
    expect(refused).toMatchObject({ status: 403, body: { code: 'forbidden' } })
    const still = (await call(ctx.app, s.org.token, { method: 'GET', url: `/v1/actions/${pending[0].id}` })).json()
    expect(still.status).toBe('pending_approval')
    await page.context().close()
  })

  it("another organization's incident URL shows not found", async () => {
    const s = await setup()
    const incidentId = await openIncident(s)
    const stranger = await signup(ctx.app)
    const page = await signedIn(browser, base, stranger.email, PASSWORD)
    await page.goto(`/console/incidents/${incidentId}`)
    await expect.poll(() => page.getByRole('heading', { name: /not found/i }).count(), { timeout: 10_000 }).toBeGreaterThan(0)
    expect(await page.getByText('restart api').count()).toBe(0)
    await page.context().close()
  })

  describe('a forged cross-site request', () => {
    let evil: Server
    afterAll(() => new Promise<void>((resolve) => (evil ? evil.close(() => resolve()) : resolve())))

    it('from another site carries no session (SameSite=Strict); from the console page without the token it is refused; nothing changes', async () => {
      const s = await setup()
      const page = await signedIn(browser, base, s.org.email, PASSWORD)
      const rule = { service: 'api', startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 3_600_000).toISOString(), reason: 'forged' }
      const target = `${base}/v1/suppression-rules`
      // The attacker's page: another site (localhost is not 127.0.0.1), posting a form and a fetch at the API.
      evil = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><body>
<form id="f" method="POST" action="${target}" enctype="application/x-www-form-urlencoded"><input name="reason" value="forged"></form>
<script>
fetch(${JSON.stringify(target)}, { method: 'POST', credentials: 'include', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: ${JSON.stringify(JSON.stringify(rule))} })
  .finally(() => document.getElementById('f').submit())
</script></body>`)
      })
      await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve))
      const evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`
      const answers: number[] = []
      page.context().on('response', (response) => {
        if (response.url() === target) answers.push(response.status())
      })
      const attacker = await page.context().newPage()
      await attacker.goto(evilUrl)
      await expect.poll(() => answers.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1)
      await attacker.waitForLoadState()
      // Neither request carried the session: the API answered 401 (the form's page shows the problem).
      expect(answers.every((status) => status === 401), String(answers)).toBe(true)

      // The console's own page, cookies and all, but without the CSRF token: 403.
      const forged = await fetchFromPage(page, 'POST', '/v1/suppression-rules', { csrf: false, body: rule })
      expect(forged).toMatchObject({ status: 403, body: { code: 'csrf_failed' } })
      const rules = (await call(ctx.app, s.org.token, { method: 'GET', url: '/v1/suppression-rules' })).json().items
      expect(rules).toEqual([])
      // With the token it goes through: the refusal was the token's doing.
      expect((await fetchFromPage(page, 'POST', '/v1/suppression-rules', { csrf: true, body: rule })).status).toBe(201)
      await page.context().close()
    })
  })

  it('every page renders without a script error, and signing in works by keyboard alone', async () => {
    const s = await setup()
    const incidentId = await openIncident(s)
    const rule = { service: 'api', metric: 'latency', startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 7_200_000).toISOString(), reason: 'planned failover drill' }
    expect((await call(ctx.app, s.org.token, { method: 'POST', url: '/v1/suppression-rules', payload: rule })).statusCode).toBe(201)
    await apiKey(ctx.app, s.org, 'operator')

    const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: base })
    const page = await context.newPage()
    const failures: string[] = []
    page.on('pageerror', (err) => failures.push(err.message))
    page.on('console', (message) => {
      if (message.type() === 'error' && !/favicon/.test(message.text())) failures.push(message.text())
    })
    await page.goto('/console/')
    await page.getByLabel('Email').focus()
    await screenshot(page, 'sign-in')
    await page.keyboard.type(s.org.email)
    await page.keyboard.press('Tab')
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press('Enter')
    await expect.poll(() => page.getByRole('button', { name: 'Sign out' }).count(), { timeout: 10_000 }).toBe(1)

    const pages: [string, string, RegExp][] = [
      ['approvals', '/console/approvals', /approvals/i],
      ['suppression', '/console/suppression', /suppression/i],
      ['services', '/console/services', /services/i],
      ['service', `/console/services/${s.service.id}`, /api/],
      ['settings', '/console/settings', /settings/i],
      ['incident-detail', `/console/incidents/${incidentId}`, /latency|api/i]
    ]
    for (const [name, url, heading] of pages) {
      await page.goto(url)
      await expect.poll(() => page.getByRole('heading', { name: heading }).count(), { timeout: 10_000 }).toBeGreaterThan(0)
      await page.waitForLoadState('networkidle').catch(() => undefined)
      await screenshot(page, name)
    }
    // The suppression rule shows with its live preview of what it matches.
    await page.goto('/console/suppression')
    await expect.poll(() => page.getByText('planned failover drill').count(), { timeout: 10_000 }).toBeGreaterThan(0)
    expect(failures).toEqual([])
    await context.close()
  })

  it('the API docs (same origin, so the same cookies) render under their Content-Security-Policy', async () => {
    const context = await browser.newContext({ baseURL: base })
    const page = await context.newPage()
    const failures: string[] = []
    page.on('console', (message) => {
      if (message.type() === 'error') failures.push(message.text())
    })
    const res = await page.goto('/docs')
    expect(res?.headers()['content-security-policy']).toMatch(/script-src 'self'/)
    expect(res?.headers()['content-security-policy']).not.toMatch(/upgrade-insecure-requests/)
    await expect.poll(() => page.locator('.opblock').count(), { timeout: 10_000 }).toBeGreaterThan(40)
    expect(failures).toEqual([])
    await context.close()
  })

  it("the queue dashboard opens with the console's session for the operating organization's admins, under a CSP", async () => {
    const operator = await signup(ctx.app)
    const operated = await buildApp(testConfig({ QUEUE_DASHBOARD_ORGANIZATION_ID: operator.organizationId }), { logger: false })
    try {
      const operatedBase = await serve(operated)
      const page = await signedIn(browser, operatedBase, operator.email, PASSWORD)
      const failures: string[] = []
      page.on('console', (message) => {
        // (bull-board asks for a web font from fonts.googleapis.com, which the CSP leaves out.)
        if (message.type() === 'error' && !/fonts\.googleapis\.com/.test(message.text())) failures.push(message.text())
      })
      // The console links to it only for those who may open it.
      await page.getByRole('link', { name: /queues/i }).click()
      await expect.poll(() => page.url()).toContain('/admin/queues')
      await expect.poll(() => page.getByText('actions', { exact: true }).count(), { timeout: 15_000 }).toBeGreaterThan(0)
      const res = await page.request.get(`${operatedBase}/admin/queues`)
      expect(res.headers()['content-security-policy']).toMatch(/script-src 'self'/)
      expect(failures).toEqual([])
      await page.waitForLoadState('networkidle').catch(() => undefined)
      await screenshot(page, 'queues')
      await page.context().close()

      // Another organization's owner signs in to the same console and sees no link, and the page refuses.
      const stranger = await signup(ctx.app)
      const other = await signedIn(browser, operatedBase, stranger.email, PASSWORD)
      expect(await other.getByRole('link', { name: /queues/i }).count()).toBe(0)
      expect((await other.request.get(`${operatedBase}/admin/queues/api/queues`)).status()).toBe(403)
      await other.context().close()
    } finally {
      await operated.close()
    }
  })

  it('a reload after the access cookie expired renews the session once, without a sign-in', async () => {
    const org = await signup(ctx.app)
    const page = await signedIn(browser, base, org.email, PASSWORD)
    const refreshes: number[] = []
    page.on('response', (response) => {
      if (response.url().endsWith('/v1/auth/session/refresh')) refreshes.push(response.status())
    })
    // What the browser does when the 15-minute access cookie's Max-Age runs out.
    await page.context().clearCookies({ name: 'autopilot_session' })
    await page.reload()
    await expect.poll(() => page.getByRole('button', { name: 'Sign out' }).count(), { timeout: 10_000 }).toBe(1)
    expect(refreshes).toEqual([200])
    expect((await page.context().cookies()).some((cookie) => cookie.name === 'autopilot_session')).toBe(true)
    // Signed out, the refresh cookie is gone too: a reload goes to sign-in without trying to renew.
    await page.getByRole('button', { name: 'Sign out' }).click()
    await expect.poll(() => page.getByRole('button', { name: 'Sign in' }).count(), { timeout: 10_000 }).toBe(1)
    await page.reload()
    await expect.poll(() => page.getByRole('button', { name: 'Sign in' }).count(), { timeout: 10_000 }).toBe(1)
    expect(refreshes).toEqual([200])
    await page.context().close()
  })

  it('a list of 1,000 incidents renders, at desktop and phone width', async () => {
    const org = await signup(ctx.app)
    const service = (await call(ctx.app, org.token, { method: 'POST', url: '/v1/services', payload: { name: 'bulk' } })).json()
    const now = Date.now()
    await ctx.app.db.insert(incidents).values(
      Array.from({ length: 1000 }, (_, i) => ({
        organizationId: org.organizationId,
        serviceId: service.id,
        title: `alert ${i}: disk filling on node-${i % 37}`,
        severity: i % 3 === 0 ? ('critical' as const) : ('warning' as const),
        status: 'resolved' as const,
        source: 'alert' as const,
        dedupKey: `bulk-${randomUUID()}`,
        metrics: ['disk_used_bytes'],
        anomalyCount: 1,
        openedAt: new Date(now - i * 60_000),
        resolvedAt: new Date(now - i * 60_000 + 30_000)
      }))
    )
    for (const viewport of [undefined, PHONE]) {
      const page = await signedIn(browser, base, org.email, PASSWORD, viewport)
      await expect.poll(() => rows(page).count(), { timeout: 10_000 }).toBeGreaterThan(0)
      // Load every page (the API gives at most 200 a time), timing it inside the browser.
      const { elapsed, longest } = await page.evaluate(async () => {
        // Long tasks (over 50 ms) are the browser's busy stretches: rendering, not waiting for the API.
        let longest = 0
        const observer = new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) longest = Math.max(longest, entry.duration)
        })
        observer.observe({ type: 'longtask' })
        const started = performance.now()
        const count = () => document.querySelectorAll('[data-testid="incident-row"]').length
        while (count() < 1000) {
          const before = count()
          const more = [...document.querySelectorAll('button')].find((b) => /load more/i.test(b.textContent ?? ''))
          if (!more) throw new Error(`no "Load more" button at ${before} rows`)
          more.click()
          while (count() === before) await new Promise((resolve) => setTimeout(resolve, 5))
        }
        const elapsed = performance.now() - started
        await new Promise((resolve) => setTimeout(resolve, 50))
        observer.disconnect()
        return { elapsed, longest }
      })
      expect(await rows(page).count()).toBe(1000)
      console.log(
        `console: 800 more incidents (4 API pages) loaded and rendered in ${elapsed.toFixed(0)} ms at ${viewport ? 'phone' : 'desktop'} width; longest browser task ${longest.toFixed(0)} ms`
      )
      if (viewport) await screenshot(page, 'incidents-phone')
      await page.context().close()
    }
  })
})
