import { createServer } from 'node:http'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { callWebhook } from '../../src/jobs/executors.js'
import { storableText } from '../../src/lib/text.js'

/*
 * Issue 13, item 15: a receiver's answer with a NUL or half a surrogate pair was refused by Postgres and
 * sent the outcome to the dead-letter queue; its body was read whole, however large.
 */
const database = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/autopilot_test' })
let server: ReturnType<typeof createServer>
let url = ''
let served = 0

beforeAll(async () => {
  await database.connect()
  server = createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
    // NUL, a character of four UTF-8 bytes across the 2 KiB cut, then 64 MB the client must not read.
    res.write(Buffer.concat([Buffer.from('ok\u0000'), Buffer.alloc(2043, 'a'), Buffer.from('😀')]))
    const chunk = Buffer.alloc(64 * 1024, 'b')
    const more = () => {
      while (served < 1024 && res.write(chunk)) served++
      if (served >= 1024) res.end()
    }
    res.on('drain', more)
    res.on('close', () => res.off('drain', more))
    more()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`
})
afterAll(async () => {
  server.closeAllConnections()
  server.close()
  await database.end()
})

describe('action outcomes from hostile receivers', () => {
  it('keep a bounded, storable snippet of the answer: Postgres takes it as jsonb and as text', async () => {
    const outcome = await callWebhook(
      { url },
      { actionId: 'a1', secret: 's', allowedHosts: ['127.0.0.1'], timeoutMs: 5000, maxAttempts: 1, beforeAttempt: async () => true }
    )
    expect(outcome.status).toBe('succeeded')
    const response = String(outcome.result!.response)
    expect(response.startsWith('ok\uFFFDaaa')).toBe(true)
    expect(Buffer.byteLength(response)).toBeLessThanOrEqual(2048 + 2)
    expect(served).toBeLessThan(1024) // the rest of the body was never downloaded
    const stored = await database.query('select $1::jsonb as result, $2::text as error', [JSON.stringify(outcome.result), response])
    expect(stored.rows[0].result.response).toBe(response)
  })

  it('error texts with NUL and lone surrogates are made storable, pairs kept', async () => {
    const text = storableText('a\u0000b\uD800c\uDC00d😀')
    expect(text).toBe('a\uFFFDb\uFFFDc\uFFFDd😀')
    expect((await database.query('select $1::text as t', [text])).rows[0].t).toBe(text)
    await expect(database.query('select $1::text as t', ['a\u0000b'])).rejects.toThrow()
  })
})
