import { createServer, type IncomingHttpHeaders } from 'node:http'

export interface Received {
  method: string
  url: string
  headers: IncomingHttpHeaders
  body: string
}

/**
 * A real HTTP endpoint on loopback for webhook actions. `respond` decides each answer (status, or a
 * promise to hold the connection); every request is recorded.
 */
export async function startReceiver(respond: (call: number, request: Received) => number | Promise<number> = () => 200) {
  const received: Received[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', async () => {
      const request = { method: req.method!, url: req.url!, headers: req.headers, body }
      received.push(request)
      const status = await respond(received.length, request)
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: status < 300 }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
