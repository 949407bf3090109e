import { runMigrations } from '../src/db/migrate.js'

export default async function setup() {
  await runMigrations(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/autopilot_test')
}
