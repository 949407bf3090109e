import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Makes sure a command from a Debian package is on the PATH, installing the package when we are root. */
export async function ensureCommand(command: string, debianPackage: string): Promise<void> {
  const found = await run('sh', ['-c', `command -v ${command}`]).then(() => true, () => false)
  if (found) return
  if (process.getuid?.() !== 0) throw new Error(`${command} is missing: install the Debian package ${debianPackage}`)
  await run('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${debianPackage}`], {
    maxBuffer: 64 * 1024 * 1024
  })
}
