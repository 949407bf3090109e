import { once } from 'node:events'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import Type from 'typebox'
import { problemResponses } from '../../errors.js'
import { actionShownTo, seesSecrets } from '../../lib/redact.js'
import { EVENT_TYPES, MAX_EVENT_DATA_BYTES } from './publisher.js'
import { EVENT_BLOCK_MS, STREAM_BUFFER_BYTES, type StreamedEvent } from './reader.js'

const HEARTBEAT_MS = 15_000
/** How long a full socket buffer may stay full before its consumer counts as gone. */
const DRAIN_TIMEOUT_MS = 10_000
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
        description: `Event types: ${EVENT_TYPES.join(', ')}. Each event's id is its stream id; send it back as Last-Event-ID to resume (1h retention). An event whose data would exceed ${MAX_EVENT_DATA_BYTES} bytes of JSON carries only its top-level scalar fields (strings up to 512 characters) and \`truncated: true\`: read the rest from the API by \`id\`. In action.updated, the action's webhook header values and URL secrets read "[redacted]" unless the stream's credential is admin or above. The stream ends when its API key is revoked or its access token expires (within ${EVENT_BLOCK_MS / 1000} s when idle, before any further event otherwise). Open streams are capped per credential and per organization: past a cap the request is answered 429 \`too_many_streams\`. A consumer that stops reading is disconnected once its socket has not drained for ${DRAIN_TIMEOUT_MS / 1000} s or ${STREAM_BUFFER_BYTES / 1024 / 1024} MiB of events wait for it; it resumes with Last-Event-ID.`,
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: STREAM_ID.source })) }),
        response: {
          200: { description: 'an endless text/event-stream', content: { 'text/event-stream': { schema: Type.String() } } },
          ...problemResponses(400, 401, 429, 503)
        }
      }
    },
    async (request, reply) => {
      const { principal } = request
      // Resume after the client's last id, or start from now; past a cap this answers 429 and opens nothing.
      const subscription = await app.services.eventStreams.subscribe(principal.organizationId, `${principal.kind}:${principal.id}`, request.headers['last-event-id'])
      const close = () => {
        streams.delete(close)
        subscription.close()
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
      // A full socket buffer is waited on, not added to: a consumer that does not drain it in time (or
      // falls behind by STREAM_BUFFER_BYTES meanwhile) stopped reading, and its stream ends.
      const send = async (chunk: string) => {
        lastWrite = Date.now()
        if (out.write(chunk)) return true
        return once(out, 'drain', { signal: AbortSignal.any([subscription.signal, AbortSignal.timeout(DRAIN_TIMEOUT_MS)]) }).then(
          () => true,
          () => false
        )
      }
      // action.updated carries the action's params: redacted for the credential's role as it stands now
      // (authentication is checked again before each batch).
      const shown = ({ type, data }: StreamedEvent) =>
        type === 'action.updated' && !seesSecrets(request.principal.role) ? JSON.stringify(actionShownTo(request.principal.role, JSON.parse(data))) : data
      const stillAuthenticated = () => app.authenticate(request).then(
        () => true,
        () => false
      )

      let stalled = false
      streaming: while (!subscription.signal.aborted) {
        try {
          const events = await subscription.next(EVENT_BLOCK_MS)
          if (subscription.signal.aborted) break
          // The credential is checked again before anything more is written: a revoked API key or an
          // expired access token ends the stream (within EVENT_BLOCK_MS when idle), and the client's reconnect
          // gets its 401.
          if (!(await stillAuthenticated())) {
            out.write(': credential revoked or expired\n\n')
            break
          }
          for (const event of events) {
            if (!(await send(`id: ${event.id}\nevent: ${event.type}\ndata: ${shown(event)}\n\n`))) {
              stalled = true
              break streaming
            }
          }
          if (Date.now() - lastWrite >= HEARTBEAT_MS && !(await send(': keep-alive\n\n'))) {
            stalled = true
            break
          }
        } catch (err) {
          // Redis unavailable: tell the client to reconnect later (it resumes with Last-Event-ID).
          request.log.warn({ err }, 'event stream interrupted')
          break
        }
      }
      close()
      if (stalled || subscription.fellBehind) {
        request.log.info('event stream consumer stopped reading: disconnected')
        out.destroy()
      } else {
        // What is still buffered gets DRAIN_TIMEOUT_MS to reach the client, like any other write.
        const stuck = setTimeout(() => out.destroy(), DRAIN_TIMEOUT_MS).unref()
        out.once('finish', () => clearTimeout(stuck))
        out.end()
      }
    }
  )
}
