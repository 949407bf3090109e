import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import type { FastifyError, FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { roleAtLeast } from '../lib/context.js'
import { sendProblem, toAppError } from './errors.js'

export const DASHBOARD_PATH = '/admin/queues'

/**
 * The BullMQ dashboard (@bull-board) for admins: every request to it, page or API, carries an admin's
 * Bearer token or answers 401/403. Its routes stay out of the OpenAPI document.
 */
export async function registerQueueDashboard(app: FastifyInstance) {
  const serverAdapter = new FastifyAdapter()
  serverAdapter.setBasePath(DASHBOARD_PATH)
  createBullBoard({ queues: Object.values(app.queues).map((queue) => new BullMQAdapter(queue)), serverAdapter })
  await app.register(
    async (dashboard) => {
      dashboard.addHook('onRoute', (route) => {
        route.schema = { ...route.schema, hide: true }
      })
      // bull-board installs its own error handler, so refusals are answered here, as problem+json.
      dashboard.addHook('onRequest', async (request, reply) => {
        try {
          await dashboard.authenticate(request)
          if (!roleAtLeast(request.principal.role, 'admin')) throw errors.forbidden('the queue dashboard is for admins')
        } catch (err) {
          return sendProblem(reply, request, toAppError(err as FastifyError))
        }
      })
      await dashboard.register(serverAdapter.registerPlugin())
    },
    { prefix: DASHBOARD_PATH }
  )
}
