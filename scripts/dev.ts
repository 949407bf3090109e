// Development: API and worker in one process (production runs them as separate processes).
import closeWithGrace from 'close-with-grace'
import { loadConfigOrExit } from '../src/config.js'
import { startApi } from '../src/server.js'
import { startWorker } from '../src/worker.js'

const config = loadConfigOrExit()
const app = await startApi(config)
const stopWorker = await startWorker(config)
closeWithGrace({ delay: 15_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'shutting down after an error')
  else app.log.info({ signal }, 'shutting down')
  await Promise.all([app.close(), stopWorker()])
})
