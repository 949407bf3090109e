import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { loadConfigOrExit, type Config } from './config.js'
import { isMain } from './lib/is-main.js'

export async function startApi(config: Config) {
  const app = await buildApp(config)
  await app.listen({ port: config.port, host: config.host })
  return app
}

if (isMain(import.meta.url)) {
  const config = loadConfigOrExit()
  const app = await startApi(config)
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.close()
  })
}
