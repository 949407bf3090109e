import { ConfigError, loadDatabaseUrl } from '../src/config.js'
import { ensureDatabase, runMigrations } from '../src/db/migrate.js'

let databaseUrl: string
try {
  databaseUrl = loadDatabaseUrl()
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
}
const name = new URL(databaseUrl).pathname.slice(1)
const created = await ensureDatabase(databaseUrl)
await runMigrations(databaseUrl)
console.log(`${created ? `created database ${name}, ` : ''}migrations applied to ${name}`)
