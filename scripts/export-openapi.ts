import { writeFile } from 'node:fs/promises'
import { renderOpenApi } from '../src/openapi.js'

const target = new URL('../openapi.yaml', import.meta.url)
await writeFile(target, await renderOpenApi())
console.log('wrote openapi.yaml')
