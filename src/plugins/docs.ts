import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

export const API_TAGS = [
  { name: 'auth', description: 'Signup, login, token refresh, the caller' },
  { name: 'users', description: 'Users of the organization' },
  { name: 'api-keys', description: 'Credentials for monitoring agents' },
  { name: 'subscription', description: 'Plan and limits' },
  { name: 'services', description: 'Monitored services, their detection settings, baselines and anomalies' },
  { name: 'ingestion', description: 'Metric samples and external alerts from monitoring agents' },
  { name: 'integrations', description: 'Prometheus remote_write and Alertmanager webhooks' },
  { name: 'incidents', description: 'Incident lifecycle' },
  { name: 'runbooks', description: 'Remediation runbooks per service' },
  { name: 'actions', description: 'Remediation actions: proposal, approval, execution, verification' },
  { name: 'suppression', description: 'Suppression rules' },
  { name: 'events', description: 'Server-sent event stream' },
  { name: 'audit', description: 'Audit trail' },
  { name: 'health', description: 'Liveness and readiness' }
]

export default fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Autopilot API',
          version: '0.1.0',
          description:
            'Multi-tenant DevOps autopilot: metric samples and alerts in; anomalies, incidents and audited remediation out. Errors are application/problem+json.'
        },
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', description: 'A user access token (JWT) or an API key (dap_…)' }
          }
        },
        security: [{ bearer: [] }],
        tags: API_TAGS
      },
      // Shared schemas keep their $id as the component name (Problem), not def-0.
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) }
    })
    // staticCSP: the docs' pages load only their own scripts (hashed inline ones included): they share the
    // console's origin, and so its session cookie. Styles: their own and the inline ones Swagger UI sets;
    // no upgrade-insecure-requests, which would send a plain-HTTP deployment's own assets to https.
    await app.register(swaggerUi, {
      routePrefix: '/docs',
      staticCSP: true,
      transformStaticCSP: (header) =>
        header.replace(/\s*upgrade-insecure-requests;?/, '').replace(/style-src [^;]*;/, "style-src 'self' 'unsafe-inline';")
    })
  },
  { name: 'docs' }
)
