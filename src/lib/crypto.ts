import { hash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const SCRYPT: ScryptOptions = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }
const KEY_LENGTH = 32

function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, SCRYPT, (err, key) => (err ? reject(err) : resolve(key)))
  )
}

/** `scrypt$<salt>$<hash>`, both base64url. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt)
  return `scrypt$${salt.toString('base64url')}$${key.toString('base64url')}`
}

// Compared against when the email is unknown, so both failures cost the same time.
const DECOY_HASH = 'scrypt$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const [scheme, salt, hash] = (stored ?? DECOY_HASH).split('$')
  if (scheme !== 'scrypt' || !salt || !hash) return false
  const expected = Buffer.from(hash, 'base64url')
  const actual = await derive(password, Buffer.from(salt, 'base64url'))
  return stored !== undefined && expected.length === actual.length && timingSafeEqual(expected, actual)
}

/** One-shot crypto.hash: a third of createHash's cost, which shows on the per-request API-key lookup. */
export const sha256 = (value: string) => hash('sha256', value, 'hex')
/** Compares a presented secret with the expected one in constant time (their hashes, so lengths leak nothing). */
export const sameSecret = (presented: string, expected: string) =>
  timingSafeEqual(hash('sha256', presented, 'buffer'), hash('sha256', expected, 'buffer'))
export const randomSecret = (bytes = 32) => randomBytes(bytes).toString('base64url')
