import { mkdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser, type Page } from 'playwright-core'
import { expect } from 'vitest'
import { ensureCommand } from '../tools.js'

/** Debian's chromium, headless, kept off the network (it would reach for updates and sync otherwise). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage'
]

export const DESKTOP = { width: 1280, height: 860 }
export const PHONE = { width: 390, height: 844 }

export async function launchBrowser(): Promise<Browser> {
  await ensureCommand('chromium', 'chromium')
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
}

/** Listens on a spare loopback port; returns the base URL. */
export async function serve(app: FastifyInstance) {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

/** A fresh browser profile signed in to the console as `email`, on its incidents page. */
export async function signedIn(browser: Browser, base: string, email: string, password: string, viewport = DESKTOP): Promise<Page> {
  const context = await browser.newContext({ viewport, baseURL: base })
  const page = await context.newPage()
  await page.goto('/console/')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect.poll(() => page.getByRole('button', { name: 'Sign out' }).count(), { timeout: 10_000 }).toBe(1)
  return page
}

/** A cookie-signed request from inside the console's page, with or without its CSRF token. */
export function fetchFromPage(page: Page, method: string, url: string, options: { csrf: boolean; body?: object }) {
  return page.evaluate(
    async ({ method, url, csrf, body }) => {
      const session = await (await fetch('/v1/auth/session')).json()
      const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {}
      if (csrf) headers['x-csrf-token'] = session.csrfToken
      const res = await fetch(url, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) })
      return { status: res.status, body: await res.json().catch(() => null) }
    },
    { method, url, csrf: options.csrf, body: options.body }
  )
}

/** Saves a screenshot under CONSOLE_SCREENSHOTS (e.g. docs/console) when it is set. */
export async function screenshot(page: Page, name: string) {
  const dir = process.env.CONSOLE_SCREENSHOTS
  if (!dir) return
  await mkdir(dir, { recursive: true })
  await page.screenshot({ path: `${dir}/${name}.png`, fullPage: false })
}
