import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * Checks that a command from a Debian package is on the PATH. Tests never install anything: the
 * packages come from scripts/test-deps.sh, which `npm test` runs first (the `pretest` script).
 */
export async function ensureCommand(command: string, debianPackage: string): Promise<void> {
  const found = await run('sh', ['-c', 'command -v "$1"', 'sh', command]).then(
    () => true,
    () => false
  )
  if (found) return
  throw new Error(
    `${command} is not on the PATH: it comes from the Debian package ${debianPackage}, which ` +
      `scripts/test-deps.sh installs (npm test runs it first as pretest; or run: sudo bash scripts/test-deps.sh)`
  )
}
