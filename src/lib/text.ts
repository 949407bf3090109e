/**
 * Text from outside (a receiver's answer, an error's message) made storable: Postgres refuses NUL in text
 * and jsonb and a lone UTF-16 surrogate cannot be encoded as UTF-8, so an outcome carrying either was
 * refused and its action sent to the dead-letter queue. NUL and lone surrogates become U+FFFD.
 */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, '\uFFFD')
}
// eslint-disable-next-line no-control-regex -- NUL is what Postgres refuses
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/**
 * The start of a response body, at most `maxBytes` of it read (the rest is never downloaded), decoded as
 * UTF-8 and made storable. A multi-byte character cut at the limit is dropped, not half-kept.
 */
export async function readSnippet(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return ''
  const reader = response.body.getReader()
  const decoder = new TextDecoder('utf-8', { fatal: false })
  let text = ''
  let read = 0
  try {
    while (read < maxBytes) {
      const { done, value } = await reader.read()
      if (done) break
      const chunk = value.subarray(0, maxBytes - read)
      read += chunk.length
      text += decoder.decode(chunk, { stream: true })
    }
  } finally {
    await reader.cancel().catch(() => undefined)
  }
  return storableText(text)
}
