import { request as httpRequest } from 'node:http'

export interface SseEvent {
  id: string
  event: string
  data: Record<string, unknown>
}

/**
 * `GET /v1/events` over a real port (SSE needs a socket): its status once answered, the events parsed as
 * they come, its problem body when it is not a stream, and whether the server ended it.
 */
export function openEventStream(base: string, token: string, lastEventId?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'text/event-stream' }
  if (lastEventId) headers['last-event-id'] = lastEventId
  const stream = { status: 0, body: '', events: [] as SseEvent[], ended: false, close: () => req.destroy() }
  let buffer = ''
  const req = httpRequest(`${base}/v1/events`, { headers }, (res) => {
    stream.status = res.statusCode ?? 0
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      if (stream.status !== 200) {
        stream.body += chunk
        return
      }
      buffer += chunk
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const fields = Object.fromEntries(
          buffer
            .slice(0, end)
            .split('\n')
            .filter((line) => !line.startsWith(':') && line.includes(': '))
            .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)])
        )
        buffer = buffer.slice(end + 2)
        if (fields.event && fields.data) stream.events.push({ id: fields.id!, event: fields.event, data: JSON.parse(fields.data) })
      }
    })
    res.on('end', () => (stream.ended = true))
  })
  req.on('error', () => (stream.ended = true))
  req.end()
  return stream
}
