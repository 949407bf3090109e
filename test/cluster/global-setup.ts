import { runMigrations } from '../../src/db/migrate.js'
import { startRedisCluster } from '../servers.js'

/**
 * `npm run test:cluster`: one private Redis Cluster (3 masters, 3 replicas) for the whole run, both roles
 * on it (REDIS_URL and QUEUE_REDIS_URL), set before the test processes start so every app they build uses it.
 */
export default async function setup() {
  await runMigrations(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/autopilot_test')
  const cluster = await startRedisCluster()
  process.env.REDIS_URL = cluster.url
  process.env.QUEUE_REDIS_URL = cluster.url
  return () => cluster.stop()
}
