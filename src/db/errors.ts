/** Drizzle wraps driver errors (DrizzleQueryError); the Postgres code and constraint live on the cause. */
export function driverError(err: unknown): { code?: string; constraint?: string; message?: string } | undefined {
  let current: unknown = err
  for (let depth = 0; depth < 3 && current && typeof current === 'object'; depth++) {
    const candidate = current as { code?: unknown; cause?: unknown }
    if (typeof candidate.code === 'string') return candidate as { code: string }
    current = candidate.cause
  }
  return undefined
}

export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const pg = driverError(err)
  return pg?.code === '23505' && (constraint === undefined || pg.constraint === constraint)
}
