import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import js from '@eslint/js'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'
import importX from 'eslint-plugin-import-x'
import tseslint from 'typescript-eslint'

/*
 * Dependency direction (enforced below with import-x/no-restricted-paths; type-only imports count too):
 *
 *   top level: src/app.ts, src/server.ts, src/worker.ts, src/openapi.ts, src/composition.ts, scripts/  (import anything)
 *   src/plugins  ->  src/modules  ->  src/db, src/redis, src/lib, src/types, src/errors.ts, src/config.ts
 *   src/jobs     ->  src/modules
 *
 * src/composition.ts is the composition root (it wires modules and jobs into services). It is top level,
 * but plugins may import exactly that one file: src/plugins/services.ts decorates the app with what
 * it builds. No other top-level file is importable from plugins.
 */
/*
 * Feature modules in dependency order: a module imports only modules before it in this list, so there
 * can be no import cycle between feature folders (type-only imports included). Where a lower module needs
 * something of a higher one (incidents ask actions to propose from runbooks, actions ask incidents for
 * verdicts), it declares an interface and the composition root wires the two.
 */
const MODULE_ORDER = [
  'audit',
  'events',
  'detection',
  'health',
  'subscription',
  'users',
  'api-keys',
  'auth',
  'services',
  'suppression',
  'actions',
  'runbooks',
  'incidents',
  'backtest',
  'alerts',
  'ingest',
  'integrations'
]
const unlisted = readdirSync(join(import.meta.dirname, 'src/modules')).filter((name) => !MODULE_ORDER.includes(name))
if (unlisted.length > 0) throw new Error(`eslint.config.js: add ${unlisted.join(', ')} to MODULE_ORDER`)
const moduleOrderZones = MODULE_ORDER.map((name, rank) => ({
  target: `src/modules/${name}`,
  from: MODULE_ORDER.slice(rank + 1).map((later) => `src/modules/${later}`),
  message: `Module order (eslint.config.js MODULE_ORDER): ${name} may import only the modules listed before it.`
})).filter((zone) => zone.from.length > 0)

const TOP_LEVEL = ['src/app.ts', 'src/server.ts', 'src/worker.ts', 'src/openapi.ts', 'src/composition.ts', 'scripts', 'test']
const BOTTOM = ['src/db', 'src/redis', 'src/lib', 'src/types', 'src/errors.ts', 'src/config.ts']

export default tseslint.config(
  { ignores: ['dist/', 'drizzle/', 'node_modules/', 'coverage/', '.tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off'
    }
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      // Without these, import-x parses only '.js' dependencies and no-cycle silently sees no graph.
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      // Resolves the ESM '.js' specifiers to the '.ts' sources, as tsc does with NodeNext.
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })]
    },
    rules: {
      'import-x/no-restricted-paths': [
        'error',
        {
          basePath: import.meta.dirname,
          zones: [
            {
              target: BOTTOM,
              from: ['src/modules', 'src/plugins', 'src/jobs', ...TOP_LEVEL],
              message: 'Layering: db/redis/lib/types/errors/config are the bottom layer and import nothing above them.'
            },
            {
              target: 'src/modules',
              from: ['src/plugins', 'src/jobs', ...TOP_LEVEL],
              message: 'Layering: modules may import only other modules and db/redis/lib/errors/config.'
            },
            {
              target: 'src/jobs',
              from: ['src/plugins', ...TOP_LEVEL],
              message: 'Layering: jobs may import modules and below, not plugins or the top level.'
            },
            {
              target: 'src/plugins',
              // src/composition.ts deliberately left out: see the comment at the top of this file.
              from: ['src/jobs', ...TOP_LEVEL.filter((path) => path !== 'src/composition.ts')],
              message: 'Layering: plugins may import modules and below (and src/composition.ts), not jobs or the top level.'
            },
            ...moduleOrderZones
          ]
        }
      ],
      // File-level cycles over src. It follows value imports only (type-only imports are erased and the
      // rule skips them by design; the zones above do see them). Unbounded depth costs ~3 s on src today:
      // set maxDepth here if it ever gets slow.
      'import-x/no-cycle': ['error', { ignoreExternal: true }]
    }
  }
)
