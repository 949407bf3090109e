import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import type { FastifyError, FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { roleAtLeast } from '../lib/context.js'
import { fromSameOrigin, SAFE_METHODS } from '../modules/auth/cookies.js'
import { sendProblem, toAppError } from './errors.js'
import { pagePolicy, servePages } from './pages.js'

export const DASHBOARD_PATH = '/admin/queues'

/**
 * The BullMQ dashboard (@bull-board): the queues are shared by every tenant, so it is for the admins of
 * the organization that operates the deployment (QUEUE_DASHBOARD_ORGANIZATION_ID) and off when none is
 * configured. Every request to it, page or API, carries such an admin's Bearer token or console session
 * cookie, or answers 401/403; one signed in by cookie that changes something (retry, clean, pause) must
 * come from a page of this origin (the dashboard's scripts cannot send the CSRF header). Its routes stay
 * out of the OpenAPI document.
 */
export async function registerQueueDashboard(app: FastifyInstance, operatorOrganizationId: string | undefined) {
  if (!operatorOrganizationId) return
  const serverAdapter = new FastifyAdapter()
  serverAdapter.setBasePath(DASHBOARD_PATH)
  createBullBoard({ queues: Object.values(app.queues).map((queue) => new BullMQAdapter(queue)), serverAdapter })
  await app.register(
    async (dashboard) => {
      // Its config is a JSON script (not run); it sets inline styles and a <base>. (Its web font, from
      // fonts.googleapis.com, is left out: the system font does.)
      servePages(dashboard, { 'content-security-policy': pagePolicy({ inlineStyles: true, baseUri: "'self'" }) })
      // bull-board installs its own error handler, so refusals are answered here, as problem+json.
      dashboard.addHook('onRequest', async (request, reply) => {
        try {
          await dashboard.authenticate(request)
          const { organizationId, role } = request.principal
          if (organizationId !== operatorOrganizationId || !roleAtLeast(role, 'admin')) {
            throw errors.forbidden("the queue dashboard is for the operating organization's admins")
          }
          if (request.principal.viaCookie && !SAFE_METHODS.has(request.method) && !fromSameOrigin(request)) throw errors.csrf()
        } catch (err) {
          return sendProblem(reply, request, toAppError(err as FastifyError))
        }
      })
      await dashboard.register(serverAdapter.registerPlugin())
    },
    { prefix: DASHBOARD_PATH }
  )
}
