import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { AppError } from '../errors.js'
import { sendProblem } from './errors.js'
import { pagePolicy, servePages } from './pages.js'

export const CONSOLE_PATH = '/console'

/**
 * Where `npm run build` puts the console (scripts/build-console.mjs → dist/console), seen from the sources
 * (src/plugins → ../../dist/console) or from the compiled server (dist/src/plugins → ../../console).
 */
function consoleDirectory(): string | undefined {
  const candidates = ['../../dist/console/', '../../console/'].map((path) => fileURLToPath(new URL(path, import.meta.url)))
  // (From the sources, ../../console is the console's own source folder: only a build has assets.)
  return candidates.find((dir) => existsSync(`${dir}index.html`) && existsSync(`${dir}assets/app.js`))
}

const HEADERS = {
  // Its own scripts and styles only (uPlot and Preact style through the CSSOM, which the policy allows).
  'content-security-policy': pagePolicy(),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-cache'
}

/**
 * The operator console (a single-page app) at /console: its built assets, and index.html for every other
 * path below it (the app routes in the browser). Without a build it answers 404 saying how to build it.
 */
export async function registerConsole(app: FastifyInstance, directory = consoleDirectory()) {
  await app.register(
    async (site) => {
      servePages(site, HEADERS)
      if (!directory) {
        const unbuilt = new AppError(404, 'not_found', 'the console is not built: run `npm run build` (or `npm run build:console`)')
        site.get('/*', (request, reply) => sendProblem(reply, request, unbuilt))
        return
      }
      await site.register(fastifyStatic, { root: directory, index: false })
      const page = (_request: unknown, reply: { sendFile: (file: string) => unknown }) => reply.sendFile('index.html')
      site.get('/', page)
      // A path that is no file is one of the app's own pages; a missing asset is a 404.
      site.setNotFoundHandler((request, reply) => {
        if (request.method !== 'GET' && request.method !== 'HEAD') return sendProblem(reply, request, new AppError(405, 'method_not_allowed', 'the console only answers GET'))
        if (request.url.startsWith(`${CONSOLE_PATH}/assets/`)) return sendProblem(reply, request, new AppError(404, 'not_found', 'no such console asset'))
        return page(request, reply)
      })
    },
    { prefix: CONSOLE_PATH }
  )
  app.get('/', { schema: { hide: true } }, (_request, reply) => reply.redirect(`${CONSOLE_PATH}/`))
}
