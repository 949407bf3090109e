import type { CookieSerializeOptions } from '@fastify/cookie'

/**
 * The console's cookie session: the access token (JWT) in one cookie sent with every request, the refresh
 * token in another sent only to the session routes. Both httpOnly (no script reads them), SameSite=Strict
 * (no other site's page sends them) and Secure when the request came over TLS. Unsafe requests signed in by
 * cookie also carry the CSRF token (double submit against the CSRF secret cookie).
 */
export const SESSION_COOKIE = 'autopilot_session'
export const REFRESH_COOKIE = 'autopilot_refresh'
export const CSRF_COOKIE = 'autopilot_csrf'
export const CSRF_HEADER = 'x-csrf-token'
/** the session routes: the only path the refresh token is sent to */
export const SESSION_PATH = '/v1/auth/session'

export const cookieOptions = (path: string, maxAgeSeconds?: number): CookieSerializeOptions => ({
  path,
  httpOnly: true,
  sameSite: 'strict',
  secure: 'auto',
  ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds })
})

export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Whether a browser says the request comes from a page of this origin: Fetch Metadata (`Sec-Fetch-Site`)
 * where the browser sends it, else the `Origin` header against the request's own host. For pages that
 * cannot send the CSRF header (the queue dashboard's own scripts).
 */
export function fromSameOrigin(request: { headers: Record<string, string | string[] | undefined>; protocol: string; host: string }) {
  const site = request.headers['sec-fetch-site']
  if (site !== undefined) return site === 'same-origin'
  const origin = request.headers.origin
  return typeof origin === 'string' && origin === `${request.protocol}://${request.host}`
}
