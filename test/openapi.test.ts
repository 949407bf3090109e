import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { renderOpenApi } from '../src/openapi.js'

describe('openapi.yaml', () => {
  it('matches what the app produces (run `npm run openapi` after changing routes)', async () => {
    const committed = await readFile(new URL('../openapi.yaml', import.meta.url), 'utf8')
    expect(committed).toBe(await renderOpenApi())
  })

  it('documents every operation with tags, operationId, summary and error responses', async () => {
    const doc = parse(await renderOpenApi())
    const operationIds = new Set<string>()
    for (const [path, item] of Object.entries<Record<string, Record<string, unknown>>>(doc.paths)) {
      if (path.startsWith('/docs')) continue
      for (const [method, op] of Object.entries(item)) {
        const where = `${method.toUpperCase()} ${path}`
        expect(op.tags, where).toBeDefined()
        expect(op.summary, where).toBeDefined()
        expect(op.operationId, where).toBeDefined()
        expect(operationIds.has(op.operationId as string), `duplicate operationId ${op.operationId}`).toBe(false)
        operationIds.add(op.operationId as string)
        const responses = op.responses as Record<string, { content?: Record<string, unknown> }>
        const codes = Object.keys(responses)
        expect(codes.some((c) => c.startsWith('2')), where).toBe(true)
        if (path.startsWith('/v1/') && !path.startsWith('/v1/auth/')) {
          expect(codes, where).toContain('401')
          expect(responses['401']!.content!['application/problem+json'], where).toBeDefined()
        }
      }
    }
    expect(doc.components.schemas.Problem).toBeDefined()
  })
})
