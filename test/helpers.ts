import { randomUUID } from 'node:crypto'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, expect } from 'vitest'
import { buildApp } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import type { Role } from '../src/db/schema/index.js'
import { manualClock, type Clock } from '../src/lib/clock.js'
import { EPISODE_CALM_SAMPLES } from '../src/modules/detection/detector.js'

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({ ...process.env, QUEUE_PREFIX: `{test-${randomUUID().slice(0, 8)}}`, ...overrides })
}

/**
 * Builds the real app (real Postgres and Redis) once for the file and closes it afterwards; `clock` is
 * the time its services and rate limits read (the system clock unless given).
 */
export function useApp(overrides: Record<string, string> = {}, options: { clock?: Clock } = {}) {
  const holder = {} as { app: FastifyInstance; config: Config }
  beforeAll(async () => {
    holder.config = testConfig(overrides)
    holder.app = await buildApp(holder.config, { logger: process.env.TEST_LOGS ? { level: 'error' } : false, clock: options.clock })
    await holder.app.ready()
  })
  afterAll(async () => {
    await holder.app?.close()
  })
  return holder
}

/**
 * Rate limits and quotas count in fixed, epoch-aligned minutes: a test that spends a budget and expects
 * the refusal runs on a clock stopped one second into a minute, so it can never straddle two.
 */
export const clockStoppedInAMinute = () => manualClock(Math.floor(Date.now() / 60_000) * 60_000 + 1000)

/** 100 ± 2, cycling: a steady series with a known spread, for warming baselines. */
export const steady = (i: number) => 100 + [2, -2, 1, -1, 0][i % 5]!

/**
 * `n` samples of one series (steady by default) with explicit, increasing timestamps `stepMs` apart, the
 * last at `endAt`: with the defaults, 40 samples over 39 minutes, enough for a baseline on default settings
 * (minSamples 30, minSpanSeconds 1800) to score. A sample sent afterwards without a timestamp arrives "now",
 * after them. On a warmed series (100 ± 2) a new sample of 110 is a warning (z ≈ 5.5) and 120 or more a
 * critical (z ≥ 8); 106 is within the band.
 */
export function warmSamples(
  service: string,
  metric: string,
  n = 40,
  { endAt = Date.now() - 1000, stepMs = 60_000, value = steady }: { endAt?: number; stepMs?: number; value?: (i: number) => number } = {}
) {
  return Array.from({ length: n }, (_, i) => ({ service, metric, value: value(i), timestamp: endAt - (n - 1 - i) * stepMs }))
}

/**
 * Steady samples arriving now (no timestamp), as many as end an anomaly episode of the series (samples
 * below half the threshold): the next anomaly of the series starts a new episode and is listed again.
 */
export function calmSamples(service: string, metric: string, n = EPISODE_CALM_SAMPLES) {
  return Array.from({ length: n }, (_, i) => ({ service, metric, value: steady(i) }))
}

export const uniqueEmail = (label = 'user') => `${label}-${randomUUID()}@example.test`
export const PASSWORD = 'correct horse battery staple'

export interface Org {
  organizationId: string
  ownerId: string
  email: string
  token: string
  refreshToken: string
}

export async function signup(app: FastifyInstance, organization = 'Acme'): Promise<Org> {
  const email = uniqueEmail('owner')
  const res = await app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: PASSWORD, organization } })
  expect(res.statusCode, res.body).toBe(201)
  const body = res.json()
  return {
    organizationId: body.organization.id,
    ownerId: body.user.id,
    email,
    token: body.accessToken,
    refreshToken: body.refreshToken
  }
}

export function call(app: FastifyInstance, token: string | undefined, options: InjectOptions): Promise<LightMyRequestResponse> {
  return app.inject({
    ...options,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...options.headers }
  })
}

/** A user of the organization with `role`, logged in; returns its access token. */
export async function userWithRole(app: FastifyInstance, org: Org, role: Role): Promise<string> {
  const email = uniqueEmail(role)
  const created = await call(app, org.token, { method: 'POST', url: '/v1/users', payload: { email, password: PASSWORD, role } })
  expect(created.statusCode, created.body).toBe(201)
  const login = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: PASSWORD } })
  expect(login.statusCode, login.body).toBe(200)
  return login.json().accessToken
}

export async function apiKey(app: FastifyInstance, org: Org, role: Role = 'agent'): Promise<{ id: string; key: string }> {
  const res = await call(app, org.token, { method: 'POST', url: '/v1/api-keys', payload: { name: `${role} key`, role } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json()
}

export async function createService(app: FastifyInstance, org: Org, name = `svc-${randomUUID().slice(0, 8)}`, detection?: object) {
  const res = await call(app, org.token, { method: 'POST', url: '/v1/services', payload: { name, ...(detection ? { detection } : {}) } })
  expect(res.statusCode, res.body).toBe(201)
  return res.json() as { id: string; name: string }
}

export async function auditActions(app: FastifyInstance, org: Org, query = '') {
  const res = await call(app, org.token, { method: 'GET', url: `/v1/audit?limit=200${query}` })
  expect(res.statusCode, res.body).toBe(200)
  return (res.json().items as { action: string; resourceId: string; before: unknown; after: unknown }[])
}

export function expectProblem(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode, res.body).toBe(status)
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
  const body = res.json()
  expect(body).toMatchObject({ status, code, title: expect.any(String), detail: expect.any(String), type: expect.any(String) })
  return body as { errors?: { path: string; message: string }[] }
}
