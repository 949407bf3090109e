import { buildApp } from './app.js'
import { loadConfig } from './config.js'

/** The OpenAPI document of the app as YAML: what `npm run openapi` writes to openapi.yaml. */
export async function renderOpenApi(): Promise<string> {
  // Fixed, connection-free settings: the document must not depend on the environment it is built in.
  const app = await buildApp(loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'silent' }), { logger: false })
  try {
    await app.ready()
    return app.swagger({ yaml: true })
  } finally {
    await app.close()
  }
}
