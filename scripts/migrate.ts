import { loadConfig } from '../src/config.js'
import { ensureDatabase, runMigrations } from '../src/db/migrate.js'

const config = loadConfig()
const created = await ensureDatabase(config.databaseUrl)
await runMigrations(config.databaseUrl)
const name = new URL(config.databaseUrl).pathname.slice(1)
console.log(`${created ? 'created database ' + name + ' and applied' : 'applied'} migrations to ${name}`)
