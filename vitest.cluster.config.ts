import { defineConfig } from 'vitest/config'
import base from './vitest.config.js'

/**
 * The functional suites that touch Redis, run with both roles on a real Redis Cluster (test/cluster/
 * global-setup.ts starts it and sets REDIS_URL and QUEUE_REDIS_URL), and the cluster's own tests in
 * test/cluster (slots, invalidation, events, failover).
 */
const { REDIS_URL: _standalone, ...env } = base.test!.env!
export default defineConfig({
  test: {
    ...base.test,
    env,
    globalSetup: ['./test/cluster/global-setup.ts'],
    include: [
      'test/modules/ingest/**/*.test.ts',
      'test/modules/incidents/**/*.test.ts',
      'test/modules/alerts/**/*.test.ts',
      'test/modules/actions/**/*.test.ts',
      'test/modules/integrations/**/*.test.ts',
      'test/lib/invalidation*.test.ts',
      'test/abuse/sse.test.ts',
      'test/abuse/logout.test.ts',
      'test/cluster/**/*.test.ts'
    ]
  }
})
