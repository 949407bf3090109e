import type { FastifyInstance } from 'fastify'

/**
 * The Content-Security-Policy of a page this origin serves to browsers (the console, the queue dashboard):
 * its own scripts only, talking to this origin only, never framed. They share the API's origin and so the
 * console's session cookie: a script injected into one would act as the signed-in user.
 */
export function pagePolicy({ inlineStyles = false, baseUri = "'none'" }: { inlineStyles?: boolean; baseUri?: string } = {}) {
  const styles = inlineStyles ? "'self' 'unsafe-inline'" : "'self'"
  return `default-src 'self'; script-src 'self'; style-src ${styles}; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri ${baseUri}; form-action 'self'`
}

/** Makes a plugin scope a set of browser pages: its routes kept out of the OpenAPI document, `headers` on every answer. */
export function servePages(scope: FastifyInstance, headers: Record<string, string>) {
  scope.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, hide: true }
  })
  scope.addHook('onSend', (_request, reply, payload, done) => {
    void reply.headers(headers)
    done(null, payload)
  })
}
