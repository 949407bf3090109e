import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { problemResponses } from '../../errors.js'
import { actionShownTo, seesSecrets } from '../../lib/redact.js'
import { EVENT_TYPES, MAX_EVENT_DATA_BYTES } from './publisher.js'
import { EVENT_BLOCK_MS, type StreamedEvent } from './reader.js'

const HEARTBEAT_MS = 15_000
const STREAM_ID = /^\d+-\d+$/

/** `text/event-stream` of the organization's events, resumable with Last-Event-ID within the retention. */
export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Open streams never go idle, so shutdown ends them explicitly (clients reconnect elsewhere and resume).
  const streams = new Set<() => void>()
  app.addHook('preClose', async () => {
    for (const end of streams) end()
  })

  app.get(
    '/events',
    {
      config: { minRole: 'agent' },
      schema: {
        tags: ['events'],
        operationId: 'streamEvents',
        summary: 'Server-sent events: anomalies, incidents and actions of the organization',
        description: `Event types: ${EVENT_TYPES.join(', ')}. Each event's id is its stream id; send it back as Last-Event-ID to resume (1h retention). An event whose data would exceed ${MAX_EVENT_DATA_BYTES} bytes of JSON carries only its top-level scalar fields (strings up to 512 characters) and \`truncated: true\`: read the rest from the API by \`id\`. In action.updated, the action's webhook header values and URL secrets read "[redacted]" unless the stream's credential is admin or above. The stream ends when its API key is revoked or its access token expires (within ${EVENT_BLOCK_MS / 1000} s when idle, before any further event otherwise).`,
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: STREAM_ID.source })) }),
        response: {
          200: { description: 'an endless text/event-stream', content: { 'text/event-stream': { schema: Type.String() } } },
          ...problemResponses(400, 401, 429, 503)
        }
      }
    },
    async (request, reply) => {
      // Resume after the client's last id, or start from now.
      const reader = await app.services.openEventStream(request.principal.organizationId, request.headers['last-event-id'])
      let open = true
      const close = () => {
        open = false
        streams.delete(close)
        reader.close()
      }
      streams.add(close)
      request.raw.on('close', close)

      reply.hijack()
      const out = reply.raw
      out.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': request.id
      })
      out.write(`retry: 2000\n: connected\n\n`)
      let lastWrite = Date.now()
      // action.updated carries the action's params: redacted for the credential's role as it stands now
      // (authentication is checked again before each batch).
      const shown = ({ type, data }: StreamedEvent) =>
        type === 'action.updated' && !seesSecrets(request.principal.role) ? JSON.stringify(actionShownTo(request.principal.role, JSON.parse(data))) : data
      const stillAuthenticated = () => app.authenticate(request).then(
        () => true,
        () => false
      )

      while (open) {
        try {
          const events = await reader.next()
          // The credential is checked again before anything more is written: a revoked API key or an
          // expired access token ends the stream (within EVENT_BLOCK_MS when idle), and the client's reconnect
          // gets its 401.
          if (!(await stillAuthenticated())) {
            out.write(': credential revoked or expired\n\n')
            break
          }
          for (const event of events) {
            out.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${shown(event)}\n\n`)
            lastWrite = Date.now()
          }
          if (Date.now() - lastWrite >= HEARTBEAT_MS) {
            out.write(': keep-alive\n\n')
            lastWrite = Date.now()
          }
        } catch (err) {
          if (!open) break
          // Redis unavailable: tell the client to reconnect later (it resumes with Last-Event-ID).
          request.log.warn({ err }, 'event stream interrupted')
          break
        }
      }
      close()
      out.end()
    }
  )
}
