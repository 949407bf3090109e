// Builds the browser operator console: console/src/main.tsx → dist/console/assets/app.{js,css}, plus index.html.
// Usage (from the repo root): node scripts/build-console.mjs
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Buffer } from 'node:buffer'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outDir = join(root, 'dist/console')
const assets = join(outDir, 'assets')
const MAX_GZIPPED_JS = 200 * 1024

await rm(outDir, { recursive: true, force: true })
await mkdir(assets, { recursive: true })

try {
  await build({
    entryPoints: { app: join(root, 'console/src/main.tsx') },
    outdir: assets,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    sourcemap: 'external',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' }
  })
} catch {
  // esbuild already printed the errors.
  process.exit(1)
}
await copyFile(join(root, 'console/index.html'), join(outDir, 'index.html'))

const js = await readFile(join(assets, 'app.js'))
const css = await readFile(join(assets, 'app.css')).catch(() => Buffer.alloc(0))
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`
const gzJs = gzipSync(js, { level: 9 }).length
process.stdout.write(
  `console: app.js ${kb(js.length)} (${kb(gzJs)} gzipped), app.css ${kb(css.length)} (${kb(gzipSync(css, { level: 9 }).length)} gzipped) → ${outDir}\n`
)
if (gzJs > MAX_GZIPPED_JS) {
  process.stderr.write(`console: gzipped app.js is ${kb(gzJs)}, over the ${kb(MAX_GZIPPED_JS)} budget\n`)
  process.exit(1)
}
